// The PolicyEngine: compiles policies on the main thread (once per sha256) and evaluates them in
// a worker pool, each evaluation in a fresh instance under a wall-clock deadline.
import { availableParallelism } from 'node:os';
import type { PolicyRequest } from '../contract/types.ts';
import type { CapabilitySpec } from '../capabilities/spec.ts';
import type { CompiledPolicy, CompileResult, EvaluateOptions, PolicyEngine } from './api.ts';
import { compilePolicy } from './compile.ts';
import { DEFAULT_LIMITS, type EngineLimits } from './limits.ts';
import type { ErrorKind, Outcome } from './outcome.ts';
import { WorkerPool } from './worker/worker-pool.ts';

export type CompileFn = (bytes: Uint8Array, limits: EngineLimits) => Promise<CompileResult>;

export interface EngineOptions {
  /** Overrides of DEFAULT_LIMITS. */
  limits?: Partial<EngineLimits>;
  /** Evaluation workers; default min(2, available cores). */
  workers?: number;
  /** Load the Linux capabilities in the workers (the daemon); the simulator and tests say false. */
  linuxCapabilities?: boolean;
  /** The compile step; default compilePolicy from ./compile.ts. */
  compile?: CompileFn;
}

function deny(kind: ErrorKind, detail: string): Outcome {
  return { decision: 'deny', reason: kind, errorKind: kind, errorDetail: detail, fuelUsed: 0, durationUs: 0, capabilityCalls: [], logs: [] };
}


export class Engine implements PolicyEngine {
  readonly limits: Readonly<EngineLimits>;
  readonly #pool: WorkerPool;
  readonly #compile: CompileFn;
  readonly #policies = new Map<string, CompiledPolicy>();
  #closed = false;

  constructor(options: EngineOptions = {}) {
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...options.limits });
    this.#compile = options.compile ?? compilePolicy;
    this.#pool = new WorkerPool({
      size: options.workers ?? Math.min(2, availableParallelism()),
      linuxCapabilities: options.linuxCapabilities ?? true,
    });
  }

  /** Resolves once every worker has started; evaluate() works without it (it waits per job). */
  ready(): Promise<void> {
    return this.#pool.ready();
  }

  /** Worker replacements so far (deadline expiries, crashes). */
  get workerRespawns(): number {
    return this.#pool.respawns;
  }

  get workerThreadIds(): number[] {
    return this.#pool.threadIds;
  }

  async compile(bytes: Uint8Array): Promise<CompileResult> {
    let result: CompileResult;
    try {
      result = await this.#compile(bytes, { ...this.limits });
    } catch (err) {
      return { ok: false, kind: 'invalid-module', message: `compiling the policy failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (result.ok) this.load(result.policy);
    return result;
  }

  /** Makes an already compiled policy (e.g. recompiled at start-up) available to the workers. */
  load(policy: CompiledPolicy): void {
    if (this.#closed) throw new Error('Engine.load: the engine is closed');
    this.#policies.set(policy.sha256, policy);
    this.#pool.load(policy.sha256, { module: policy.module, limits: policy.limits });
  }

  policy(sha256: string): CompiledPolicy | undefined {
    return this.#policies.get(sha256);
  }

  async evaluate(sha256: string, request: PolicyRequest, capabilities: CapabilitySpec, options: EvaluateOptions = {}): Promise<Outcome> {
    try {
      if (this.#closed) return deny('host-error', 'the engine is closed');
      const policy = this.#policies.get(sha256);
      if (policy === undefined) return deny('host-error', `no compiled policy with sha256 ${sha256}: compile or load it first`);
      const deadlineMs = options.deadlineMs ?? policy.limits.deadlineMs;
      if (!(deadlineMs > 0)) return deny('host-error', `deadline must be a positive number of milliseconds, got ${deadlineMs}`);
      return await this.#pool.run({ sha256, request, capabilities }, deadlineMs);
    } catch (err) {
      // e.g. a CapabilitySpec that cannot be cloned to the worker.
      return deny('host-error', `evaluation failed in the engine: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  unload(sha256: string): void {
    this.#policies.delete(sha256);
    this.#pool.unload(sha256);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
  }
}
