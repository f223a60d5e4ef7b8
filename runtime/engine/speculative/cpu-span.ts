// How much of this thread's CPU time a span of work took, reading the CPU clock (a system call,
// ~1.3 µs) only when the wall clock (~0.1 µs) cannot settle it: one thread's CPU time never runs
// ahead of the wall time, so a span whose wall time is within a bound is within it in CPU time.
// On a busy machine the wall time also holds the time the OS ran other threads; then the CPU
// clock is read, and only the thread's own time counts.

/** Below this wall time a span is charged its wall time (an upper bound of its CPU time, off by
 * at most this much when the OS preempted it meanwhile) without reading the CPU clock. */
export const WALL_TIME_SETTLES_MS = 0.2;

export interface SpanClocks {
  /** Milliseconds of this thread's CPU time. */
  cpu: () => number;
  /** Milliseconds of wall time, or the same function as `cpu` (a test's clock: every read counts). */
  wall: () => number;
}

export class CpuSpan {
  readonly #clocks: SpanClocks;
  #wall0 = 0;
  #cpu0 = 0;
  /** What measure() found: the span's CPU time (its wall time when that settles it), and its wall time. */
  cpuMs = 0;
  wallMs = 0;

  constructor(clocks: SpanClocks) {
    this.#clocks = clocks;
    this.restart();
  }

  /** Starts the span again from now: one span serves run after run (each made ~0.1 KB of garbage). */
  restart(): void {
    const clocks = this.#clocks;
    this.#wall0 = clocks.wall();
    this.#cpu0 = clocks.cpu === clocks.wall ? this.#wall0 : clocks.cpu();
  }

  /** Whether the span has taken more than `ms` of CPU time. */
  over(ms: number): boolean {
    const { cpu, wall } = this.#clocks;
    const w = wall();
    if (w - this.#wall0 <= ms) return false;
    return (cpu === wall ? w : cpu()) - this.#cpu0 > ms;
  }

  /** Measures the span so far into cpuMs (its wall time when that settles it) and wallMs. */
  measure(): void {
    const { cpu, wall } = this.#clocks;
    const wallMs = wall() - this.#wall0;
    this.wallMs = wallMs;
    this.cpuMs = cpu === wall || wallMs <= WALL_TIME_SETTLES_MS ? wallMs : Math.min(wallMs, cpu() - this.#cpu0);
  }
}
