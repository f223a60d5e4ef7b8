// A limit counted in CPU time, with a wall-clock cap well above it. What a limit stands for is the
// cost of a piece of work, and on a busy machine the wall clock also counts the time the OS gave
// to others: a verdict on it depends on the load. The cap still ends work that never gets a
// core, or whose clock cannot be read. Used for the simulator's worker deadline (the worker's
// thread) and the compile process's time limit (every thread of that process).

export interface CpuLimitOptions {
  /** Wall-clock cap (ms) from now. */
  wallCapMs: number;
  /** How many cores the clock's owner can use at once (1 for a thread): its CPU time runs at most
   * that much faster than the wall clock, so a look sooner than (CPU time left / cpus) is wasted. */
  cpus?: number;
  /** Milliseconds of wall time; default performance.now. A seam for tests. */
  wall?: () => number;
}

/** Below this, a wait is rounded up: the clock then says within a few looks. */
const MIN_WAIT_MS = 1;

export class CpuLimit {
  readonly #cpu: (() => number) | null;
  readonly #wall: () => number;
  readonly limitMs: number;
  readonly wallCapMs: number;
  readonly #cpus: number;
  readonly #cpu0: number;
  readonly #wall0: number;
  /** CPU time used at the last look (wall time where the clock cannot be read). */
  usedMs = 0;
  /** Which limit was passed, once one was. */
  passed: 'cpu' | 'wall' | undefined;

  /** `cpu`: the clock (ms) of the work's CPU time, read from now on; null: counted on the wall clock. */
  constructor(cpu: (() => number) | null, limitMs: number, options: CpuLimitOptions) {
    this.#wall = options.wall ?? (() => performance.now());
    this.limitMs = limitMs;
    this.wallCapMs = options.wallCapMs;
    this.#cpus = Math.max(1, options.cpus ?? 1);
    this.#wall0 = this.#wall();
    const c0 = cpu?.() ?? Number.NaN;
    this.#cpu = Number.isNaN(c0) ? null : cpu;
    this.#cpu0 = c0;
  }

  /** How long to wait (ms) before looking again; 0 once the work passed its limit or the cap. */
  next(): number {
    const wallMs = this.#wall() - this.#wall0;
    // A clock that stops reading (its thread or process ended: its end answers the work) counts wall time.
    const cpuMs = this.#cpu === null ? Number.NaN : this.#cpu() - this.#cpu0;
    this.usedMs = Number.isNaN(cpuMs) ? wallMs : cpuMs;
    if (this.usedMs >= this.limitMs) this.passed = 'cpu';
    else if (wallMs >= this.wallCapMs) this.passed = 'wall';
    if (this.passed !== undefined) return 0;
    return Math.max(MIN_WAIT_MS, Math.min((this.limitMs - this.usedMs) / this.#cpus, this.wallCapMs - wallMs));
  }
}
