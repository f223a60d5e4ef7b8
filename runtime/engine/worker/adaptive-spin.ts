// How long an evaluation worker polls for its next job before it sleeps in Atomics.wait. A poll
// that catches the job saves a futex sleep and wake-up (tens of µs); one that does not is CPU
// burnt for nothing, at the worker's nice value but still taken from the other threads of a
// busy host: under a storm of jobs that arrive a few hundred µs apart (each after its client's
// round trip), the poll missed every time, and it was ~20% of the workers' CPU time
// (perf, isolation bench, memlock-in-worker). So the poll follows the gaps it sees: a gap the
// full poll would have caught restores it; a longer one halves it, down to none.

/** The full poll (ns): back-to-back jobs (a queue the main side drains) arrive well within it. */
export const MAX_SPIN_NS = 150_000n;
/** Below this the poll is not worth its clock reads: none. */
const MIN_SPIN_NS = 10_000n;

export class AdaptiveSpin {
  #ns = MAX_SPIN_NS;

  /** How long to poll now (ns). */
  get ns(): bigint {
    return this.#ns;
  }

  /** An idle gap ended: `gapNs` from the moment the worker found no job to the moment it saw one. */
  record(gapNs: bigint): void {
    if (gapNs <= MAX_SPIN_NS) {
      this.#ns = MAX_SPIN_NS;
      return;
    }
    const half = this.#ns / 2n;
    this.#ns = half < MIN_SPIN_NS ? 0n : half;
  }
}
