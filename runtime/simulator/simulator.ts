// The one way a policy is decided for its author: `capgate test` (and --watch), `capgate eval`,
// `--compare` and `--from-audit` all open a Simulator and ask it. It owns what makes its answer
// the daemon's:
// - the daemon's Engine: the limits, speculative fuel slice and time budget of `capgate serve`
//   with no config (config/engine-options.ts), one worker, simulated capabilities only;
// - but times that count CPU rather than wall time, so that a verdict does not depend on how busy
//   the author's machine is: the speculative runs' budget is this thread's CPU time (as in the
//   daemon), and the worker's deadline its thread's CPU time, under a wall-clock cap of 10x the
//   deadline that still ends a run starved for ever (the daemon's is wall-clock: a client waits);
// - the daemon's gate (daemon-gate.ts): no policy runs for a requester in no VM, or with nothing bound;
// - the daemon's evaluation path: the speculative run on this thread first, continued in the
//   worker (replaying the calls it made, in the world it left) when its slice is not enough.
import type { SimulatedWorld } from '../capabilities/simulated/world.ts';
import { defaultEngineSection, engineOptions } from '../config/engine-options.ts';
import type { PolicyRequest } from '../contract/types.ts';
import type { CompileResult } from '../engine/api.ts';
import { compilePolicy } from '../engine/compile.ts';
import { Engine } from '../engine/engine.ts';
import type { EngineLimits } from '../engine/limits.ts';
import { warmUp } from '../engine/warm-up.ts';
import { DEFAULT_WALL_CAP_FACTOR } from '../engine/worker/cpu-deadline.ts';
import { otherThreadCpuClock } from '../os/thread-cpu-clock.ts';
import type { Decided } from '../server/request/daemon-deny.ts';
import { daemonGate } from './daemon-gate.ts';

/** One request in a simulated world, with what the daemon knows beside it. */
export interface SimulatedRequest {
  request: PolicyRequest;
  world: SimulatedWorld;
  /** Whether a policy is bound to the operation (else: no-policy, and the policy does not run). */
  policyBound: boolean;
  /** Pids that name no process: a requester among them has exited. */
  absentPids: readonly number[];
}

/**
 * Where the decision was taken, as the daemon would have taken it:
 * - `daemon`: by the daemon's gate, no policy ran;
 * - `inline`: by the speculative run on the daemon's thread;
 * - `inline-then-worker`: the speculative run's slice was not enough, a worker continued it;
 * - `worker`: in a worker from the start (the policy is backing off after runs that needed
 *   the worker, or is too costly to instantiate on the daemon's thread).
 */
export const DECIDED_BY = ['daemon', 'inline', 'inline-then-worker', 'worker'] as const;
export type DecidedBy = (typeof DECIDED_BY)[number];

export type SimulatedDecision = Decided & { decidedBy: DecidedBy };

export interface DecideOptions {
  /** Per-evaluation deadline, in ms of CPU time; default the engine's limit (the daemon's). */
  deadlineMs?: number;
}

export class Simulator {
  readonly #engine: Engine;
  /** Decisions one at a time: `decidedBy` is read from the engine's counters around each. */
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * `limits`: overrides of the daemon's (--fuel). Seams for tests: `clock`, the speculative runs'
   * clock (default this thread's CPU time); `workerClock`, the clock of the worker's thread its
   * deadline counts (default that thread's CPU time, os/thread-cpu-clock.ts), and `wallCapFactor`
   * (default 10). Close it.
   */
  constructor(
    limits: Partial<EngineLimits> = {},
    seams: { clock?: () => number; workerClock?: (tid: number) => (() => number) | null; wallCapFactor?: number } = {},
  ) {
    const daemon = engineOptions(defaultEngineSection());
    this.#engine = new Engine({
      ...daemon,
      ...(seams.clock !== undefined ? { clock: seams.clock } : {}),
      workerCpuDeadline: {
        threadClock: seams.workerClock ?? otherThreadCpuClock,
        wallCapFactor: seams.wallCapFactor ?? DEFAULT_WALL_CAP_FACTOR,
      },
      limits: { ...daemon.limits, ...limits },
      // One case at a time: a second worker would decide nothing differently.
      workers: 1,
      linuxCapabilities: false,
      // This thread serves nobody else: no compile process to start (~1 s of a CLI run).
      compile: compilePolicy,
    });
  }

  get limits(): Readonly<EngineLimits> {
    return this.#engine.limits;
  }

  /**
   * Validates, instruments and compiles a policy as the daemon does at push, then warms the
   * worker up as the daemon does, so the first case is timed as the daemon's first request.
   */
  async compile(bytes: Uint8Array): Promise<CompileResult> {
    const compiled = await this.#engine.compile(bytes);
    if (compiled.ok) await warmUp(this.#engine, compiled.policy.sha256, 1);
    return compiled;
  }

  unload(sha256: string): void {
    this.#engine.unload(sha256);
  }

  /** One request as the daemon would answer it: its gate first, then the policy. */
  decide(sha256: string, input: SimulatedRequest, options: DecideOptions = {}): Promise<SimulatedDecision> {
    const next = this.#queue.then(() => this.#decide(sha256, input, options));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #decide(sha256: string, input: SimulatedRequest, options: DecideOptions): Promise<SimulatedDecision> {
    const gate = daemonGate({
      world: input.world,
      operation: input.request.operation,
      policyBound: input.policyBound,
      absentPids: input.absentPids,
    });
    if (gate !== null) return { ...gate, decidedBy: 'daemon' };
    // Each case in a turn of the event loop of its own, as the SCENARIO says: cases decided here
    // one after the other would otherwise share one turn's speculative budget, and where the
    // worker took over would depend on how much CPU time the cases before it happened to take.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const before = { ...this.#engine.inlineStats };
    const outcome = await this.#engine.evaluate(
      sha256,
      { ...input.request },
      { kind: 'simulated', world: input.world },
      options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs },
    );
    const after = this.#engine.inlineStats;
    const decidedBy: DecidedBy =
      after !== undefined && after.decided > (before.decided ?? 0)
        ? 'inline'
        : after !== undefined && after.continued > (before.continued ?? 0)
          ? 'inline-then-worker'
          : 'worker';
    return { ...outcome, decidedBy };
  }

  close(): Promise<void> {
    return this.#engine.close();
  }
}
