// Speculative decisions on the calling thread. A worker round trip costs two thread wake-ups
// (~100 µs on this VM) for a decision that itself takes ~25 µs, so the engine first runs the
// policy here, on a small fuel slice that bounds how long this thread can be held (fuel is
// charged per expression and per 16 bytes of bulk memory, so the slice bounds the work). Most
// policies decide well inside it. A run that needs more than the slice — or hits this thread's
// smaller stack — is not an answer: the engine runs the policy again in a worker, with the full
// fuel and the wall-clock deadline, replaying the capability calls this run already made
// (capability-tape.ts) so their effects happen once. The worker's run is the decision then,
// exactly as if the policy had only ever run there.
import type { PolicyRequest } from '../../contract/types.ts';
import type { Capabilities } from '../../capabilities/capabilities.ts';
import { isStackOverflow } from '../classify-failure.ts';
import { evaluatePrepared, type PreparedInstance } from '../evaluate-instance.ts';
import { FUEL_GLOBAL } from '../instrumentation-globals.ts';
import { InstanceFactory } from '../instance-factory.ts';
import type { EngineLimits } from '../limits.ts';
import type { Outcome } from '../outcome.ts';
import { recordingCapabilities, type TapeEntry } from './capability-tape.ts';

/**
 * Default slice: the example policies use 2-6k fuel. 100k units of the cost model are well under
 * a millisecond of this thread in the worst case measured (see the engine's bench section).
 */
export const DEFAULT_INLINE_FUEL = 100_000;

/** After a run that had to continue in a worker, that many later requests skip the attempt
 * (doubling up to this bound while the policy keeps needing more than the slice). */
const MAX_BACKOFF = 64;

export type InlineResult =
  | { kind: 'decided'; outcome: Outcome }
  /** Run it again in a worker, replaying `tape`; `spentUs` went into this attempt. */
  | { kind: 'continue'; tape: TapeEntry[]; spentUs: number }
  /** Not attempted (policy not instrumented, unknown, or backing off). */
  | { kind: 'skipped' };

interface InlinePolicy {
  limits: EngineLimits;
  instances: InstanceFactory;
  /** A fresh instance made after the previous decision, off the critical path. */
  spare: PreparedInstance | undefined;
  backoff: number;
  skip: number;
  unloaded: boolean;
}

export class InlineRunner {
  readonly #sliceFuel: number;
  readonly #policies = new Map<string, InlinePolicy>();
  /** Policies whose next spare instance is about to be made. */
  readonly #spareScheduled = new Set<InlinePolicy>();
  /** Counters for tests and benchmarks. */
  readonly stats = { decided: 0, continued: 0, skipped: 0 };

  constructor(sliceFuel: number) {
    if (!Number.isSafeInteger(sliceFuel) || sliceFuel <= 0) throw new RangeError(`the inline fuel slice must be a positive safe integer, got ${sliceFuel}`);
    this.#sliceFuel = sliceFuel;
  }

  load(sha256: string, module: WebAssembly.Module, limits: EngineLimits): void {
    // Only instrumented modules can be held to a slice (uninstrumented ones exist in tests only).
    if (!WebAssembly.Module.exports(module).some((e) => e.name === FUEL_GLOBAL)) return this.unload(sha256);
    this.unload(sha256);
    this.#policies.set(sha256, { limits, instances: new InstanceFactory(module), spare: undefined, backoff: 0, skip: 0, unloaded: false });
  }

  unload(sha256: string): void {
    const p = this.#policies.get(sha256);
    if (p !== undefined) p.unloaded = true;
    this.#policies.delete(sha256);
  }

  /** One attempt; never throws. `capabilities` are released before it returns. */
  run(sha256: string, request: PolicyRequest, capabilities: Capabilities): InlineResult {
    const p = this.#policies.get(sha256);
    if (p === undefined || p.skip > 0) {
      if (p !== undefined) p.skip--;
      this.stats.skipped++;
      capabilities.release?.();
      return { kind: 'skipped' };
    }
    const tape: TapeEntry[] = [];
    const prepared = p.spare ?? p.instances.prepare();
    p.spare = undefined;
    const budget = Math.min(this.#sliceFuel, p.limits.fuel);
    let outcome: Outcome;
    try {
      outcome = evaluatePrepared(prepared, request, recordingCapabilities(capabilities, tape), p.limits, budget);
    } finally {
      capabilities.release?.();
      this.#afterRun(p, prepared);
    }
    const sliceTooSmall = budget < p.limits.fuel && outcome.errorKind === 'fuel-exhausted';
    if (sliceTooSmall || isStackOverflow(outcome)) {
      p.backoff = Math.min(MAX_BACKOFF, Math.max(1, p.backoff * 2));
      p.skip = p.backoff;
      this.stats.continued++;
      return { kind: 'continue', tape, spentUs: outcome.durationUs };
    }
    p.backoff = 0;
    this.stats.decided++;
    return { kind: 'decided', outcome };
  }

  /**
   * The memory goes back to the pool at once: scrubbing it is a fill of its initial pages (a few
   * µs for the usual one page), cheaper than the new memory the next run would otherwise need
   * when several decisions run in one turn of the event loop. Instantiating the next spare
   * (~25 µs) waits until the answers of this turn are out.
   */
  #afterRun(p: InlinePolicy, used: PreparedInstance): void {
    p.instances.recycle(used);
    if (this.#spareScheduled.has(p)) return;
    this.#spareScheduled.add(p);
    // Two hops: the first lands in this turn's check phase, where the audit commit and the
    // answer it releases are queued too; the second runs after them, in the next turn.
    setImmediate(() =>
      setImmediate(() => {
        this.#spareScheduled.delete(p);
        if (p.spare === undefined && !p.unloaded) p.spare = p.instances.prepare();
      }),
    );
  }
}
