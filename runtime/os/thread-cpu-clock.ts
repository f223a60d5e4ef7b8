// The calling thread's CPU time, as a clock. Time the OS spends running other threads (a shared
// machine, the daemon's own workers) does not count: a budget measured on this clock is what
// this thread's work cost, not how long it waited for a core. One read is a system call
// (CLOCK_THREAD_CPUTIME_ID is not in the vDSO): ~1.3 µs on the 2-core VM, against ~0.1 µs for
// performance.now, so callers read it at a bounded rate.
import { CLOCK_THREAD_CPUTIME_ID, libc, LibcUnavailableError } from './libc.ts';

/** Milliseconds of CPU time of the calling thread, monotonic; null where it cannot be read. */
export function threadCpuClock(): (() => number) | null {
  let c: ReturnType<typeof libc>;
  try {
    c = libc();
  } catch (err) {
    if (err instanceof LibcUnavailableError) return null;
    throw err;
  }
  if (Number.isNaN(c.clockMs(CLOCK_THREAD_CPUTIME_ID))) return null;
  return () => c.clockMs(CLOCK_THREAD_CPUTIME_ID);
}
