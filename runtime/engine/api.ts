// The engine as the daemon, the simulator and the benchmarks see it.
import type { PolicyRequest } from '../contract/types.ts';
import type { CapabilitySpec } from '../capabilities/spec.ts';
import type { InstantiationCost } from './instantiation-cost.ts';
import type { EngineLimits } from './limits.ts';
import type { CapabilityCall, Outcome } from './outcome.ts';
import type { DecisionContext } from '../effects/effect-intent.ts';

/** What an admin can inspect about a validated policy. */
export interface PolicyInfo {
  sha256: string;
  size: number;
  /** Component-level imports, e.g. ["capgate:policy/host@1.0.0"]. */
  imports: string[];
  /** Component-level exports, e.g. ["evaluate"]. */
  exports: string[];
  /** Host functions the core module imports, e.g. ["set-memlock", "log"]. */
  hostFunctions: string[];
  /** The component's WIT, as wasm-tools prints it. */
  wit: string;
}

/** A policy that passed validation and was instrumented (fuel, memory cap) and compiled. */
export interface CompiledPolicy extends PolicyInfo {
  module: WebAssembly.Module;
  limits: EngineLimits;
  /** What a fresh instance costs (from the upload); absent: unknown, never instantiated inline. */
  instantiation?: InstantiationCost;
}

import type { CompileErrorKind } from './component/rejection.ts';

export type { CompileErrorKind };

/** The policy was refused: `kind` says why, `message` what is wrong. */
export interface CompileRefusal {
  ok: false;
  kind: CompileErrorKind;
  message: string;
}

/**
 * Not the policy's fault: the compile launcher or the compile process died, or the launcher is
 * in its back-off after dying young. Nothing is known of the policy; it may be asked again
 * after `retryAfterS` seconds (the launcher's back-off where it is in one).
 */
export interface CompilerUnavailable {
  ok: false;
  kind: 'compiler-unavailable';
  message: string;
  retryAfterS: number;
}

export type CompileResult = { ok: true; policy: CompiledPolicy } | CompileRefusal | CompilerUnavailable;

export interface EvaluateOptions {
  /** Overrides limits.deadlineMs for this call. */
  deadlineMs?: number;
  /** Straight to a worker, without the speculative run (a warm-up of the workers). */
  noInline?: boolean;
  /** The decision this evaluation is for: its id and what its audit record says about it,
   * written with the intent of each effect (effects/), so a crash cannot lose either. */
  context?: DecisionContext;
}

export interface PolicyEngine {
  /** Validates, instruments and compiles a component; on success it is ready to evaluate. */
  compile(bytes: Uint8Array): Promise<CompileResult>;
  /**
   * Fresh instance, one decision. Never rejects: every failure is a deny Outcome. The outcome
   * lists every capability call that reached the kernel, and when it is not allow, the effects
   * of those calls have been undone (each call says how).
   */
  evaluate(
    sha256: string,
    request: PolicyRequest,
    capabilities: CapabilitySpec,
    options?: EvaluateOptions,
  ): Promise<Outcome>;
  /**
   * evaluate(), but an outcome settled on this thread (a speculative run decided it, and nothing
   * is left to undo) is returned as it is, without a promise: the request path's decisions mostly
   * are, and the promises on the way (this one, the scheduler's and its caller's reactions) were
   * ~0.5 KB of garbage a decision. Never throws.
   */
  evaluateHere?(
    sha256: string,
    request: PolicyRequest,
    capabilities: CapabilitySpec,
    options?: EvaluateOptions,
  ): Outcome | Promise<Outcome>;
  /**
   * Whether an evaluation of the policy with Linux capabilities scoped to the VM `requester` (its
   * uuid) would start on this thread now, with a speculative run (which may still continue in a
   * worker): else it goes straight to a worker. Changes nothing; the answer holds until this
   * thread's turn or the requester's back-off changes. Absent: never.
   */
  startsInline?(sha256: string, requester: string): boolean;
  /** Undoes the effects among `calls` (a decision that turned out not to be allow after all). */
  undo?(calls: readonly CapabilityCall[]): Promise<CapabilityCall[]>;
  /** The decision of `calls` is recorded: their intents can leave the effects journal. */
  releaseIntents?(calls: readonly CapabilityCall[]): void;
  /** Forgets a compiled policy (workers drop it too). */
  unload(sha256: string): void;
  close(): Promise<void>;
}
