// A worker job's deadline counted in the CPU time of the worker's thread, for a caller whose
// verdict must not depend on how busy the machine is (the simulator: a policy author's laptop).
// The daemon keeps its wall-clock deadline: that is what a client waits for. A wall-clock cap
// well above the deadline still ends a thread that is starved for ever (../cpu-limit.ts).
import { CpuLimit } from '../cpu-limit.ts';

/** What a WorkerSlot needs to time its jobs on its worker's CPU clock. */
export interface CpuDeadlineClocks {
  /** Milliseconds of CPU time of the worker thread `tid` (os/thread-cpu-clock.ts); null: unreadable. */
  threadClock: (tid: number) => (() => number) | null;
  /** The wall-clock cap of a job, as a multiple of its deadline. */
  wallCapFactor: number;
  /** Milliseconds of wall time; default performance.now. A seam for tests. */
  wall?: () => number;
}

/** The wall-clock cap of the simulator's worker runs: 10x the deadline (1 s for the daemon's 100 ms). */
export const DEFAULT_WALL_CAP_FACTOR = 10;

/** A continuation's deadline is what the first run left of it: its cap is shown to a tenth of a ms. */
const tenths = (ms: number): number => Math.round(ms * 10) / 10;

export class CpuDeadline extends CpuLimit {
  readonly #factor: number;

  /** `cpu`: the worker thread's clock, read from now on (null: counted on the wall clock). */
  constructor(cpu: (() => number) | null, deadlineMs: number, clocks: CpuDeadlineClocks) {
    super(cpu, deadlineMs, {
      wallCapMs: deadlineMs * clocks.wallCapFactor,
      ...(clocks.wall !== undefined ? { wall: clocks.wall } : {}),
    });
    this.#factor = clocks.wallCapFactor;
  }

  /** Why the job was stopped, worded as the wall-clock deadline's (`no decision within the N ms
   * deadline`, which the engine rewrites for a continuation), then which limit it hit. */
  describe(): string {
    const used = this.usedMs.toFixed(1);
    if (this.passed === 'wall')
      return `no decision within the ${this.limitMs} ms deadline: its wall-clock cap of ${tenths(this.wallCapMs)} ms (${this.#factor}x) passed first, the worker's thread having had ${used} ms of CPU time (the machine is too busy)`;
    return `no decision within the ${this.limitMs} ms deadline; the worker's thread had used ${used} ms of CPU time`;
  }
}
