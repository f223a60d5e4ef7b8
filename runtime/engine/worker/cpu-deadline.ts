// A worker job's deadline counted in the CPU time of the worker's thread, for a caller whose
// verdict must not depend on how busy the machine is (the simulator: a policy author's laptop).
// The daemon keeps its wall-clock deadline: that is what a client waits for. A wall-clock cap
// well above the deadline still ends a thread that is starved for ever, or whose clock cannot be read.

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

/** Below this, a wait is rounded up: the thread's clock then says within a few reads. */
const MIN_WAIT_MS = 1;

/** A continuation's deadline is what the first run left of it: shown to a tenth of a ms. */
const tenths = (ms: number): number => Math.round(ms * 10) / 10;

export class CpuDeadline {
  readonly #cpu: (() => number) | null;
  readonly #wall: () => number;
  readonly #deadlineMs: number;
  readonly #capMs: number;
  readonly #factor: number;
  readonly #cpu0: number;
  readonly #wall0: number;
  #usedMs = 0;
  /** Which limit the job ran past, once it did. */
  passed: 'cpu' | 'wall' | undefined;

  /** `cpu`: the worker thread's clock, read from now on (null: counted on the wall clock). */
  constructor(cpu: (() => number) | null, deadlineMs: number, clocks: CpuDeadlineClocks) {
    this.#wall = clocks.wall ?? (() => performance.now());
    this.#deadlineMs = deadlineMs;
    this.#factor = clocks.wallCapFactor;
    this.#capMs = deadlineMs * clocks.wallCapFactor;
    this.#wall0 = this.#wall();
    const c0 = cpu?.() ?? Number.NaN;
    this.#cpu = Number.isNaN(c0) ? null : cpu;
    this.#cpu0 = c0;
  }

  /** How long to wait (ms) before looking again; 0 once the job ran past its deadline or the cap. */
  next(): number {
    const wallMs = this.#wall() - this.#wall0;
    // A clock that stops reading (the thread ended: its exit answers the job) counts wall time.
    const cpuMs = this.#cpu === null ? Number.NaN : this.#cpu() - this.#cpu0;
    this.#usedMs = Number.isNaN(cpuMs) ? wallMs : cpuMs;
    if (this.#usedMs >= this.#deadlineMs) this.passed = 'cpu';
    else if (wallMs >= this.#capMs) this.passed = 'wall';
    if (this.passed !== undefined) return 0;
    // One thread's CPU time never runs ahead of the wall clock: the deadline cannot pass sooner.
    return Math.max(MIN_WAIT_MS, Math.min(this.#deadlineMs - this.#usedMs, this.#capMs - wallMs));
  }

  /** Why the job was stopped, worded as the wall-clock deadline's (`no decision within the N ms
   * deadline`, which the engine rewrites for a continuation), then which limit it hit. */
  describe(): string {
    const used = this.#usedMs.toFixed(1);
    if (this.passed === 'wall')
      return `no decision within the ${this.#deadlineMs} ms deadline: its wall-clock cap of ${tenths(this.#capMs)} ms (${this.#factor}x) passed first, the worker's thread having had ${used} ms of CPU time (the machine is too busy)`;
    return `no decision within the ${this.#deadlineMs} ms deadline; the worker's thread had used ${used} ms of CPU time`;
  }
}
