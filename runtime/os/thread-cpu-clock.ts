// CPU-time clocks: of the calling thread, of another thread of this process, of another process.
// Time the OS spends running other threads (a shared machine, the daemon's own workers) does not
// count: a budget measured on such a clock is what the work cost, not how long it waited for a
// core. One read is a system call (clock_gettime is in the vDSO for the wall clocks only):
// ~0.6-1.3 µs on the 2-core VM, against ~0.05-0.1 µs for performance.now, so callers read it at
// a bounded rate. Another thread's or process's clock is the same call on the clock id the kernel
// derives from its id (clock_getcpuclockid(3), pthread_getcpuclockid(3)): ~0.6 µs, where reading
// /proc/self/task/<tid>/schedstat costs ~7 µs (open, read, close) and /proc/<pid>/stat ~11 µs
// (measured on the 2-core VM at load ~1).
import { CLOCK_THREAD_CPUTIME_ID, libc, LibcUnavailableError, type Libc } from './libc.ts';

/** CPUCLOCK_SCHED (include/linux/posix-timers.h): the scheduler's runtime, in ns, of every thread counted. */
const CPUCLOCK_SCHED = 2;
/** The clock id names one thread rather than a process. */
const CPUCLOCK_PERTHREAD = 4;

/** make_process_cpuclock(pid, CPUCLOCK_SCHED): what clock_getcpuclockid(3) returns for `pid`. */
export const processCpuClockId = (pid: number): number => (~pid << 3) | CPUCLOCK_SCHED;

/** make_thread_cpuclock(tid, CPUCLOCK_SCHED): a thread's clock; the kernel reads it for a thread of
 * the caller's own process only. */
export const threadCpuClockId = (tid: number): number => processCpuClockId(tid) | CPUCLOCK_PERTHREAD;

function loadedLibc(): Libc | null {
  try {
    return libc();
  } catch (err) {
    if (err instanceof LibcUnavailableError) return null;
    throw err;
  }
}

/** A clock (ms) read with clock_gettime(`id`), or null where libc or that clock cannot be read. */
function cpuClock(id: number): (() => number) | null {
  const c = loadedLibc();
  if (c === null || Number.isNaN(c.clockMs(id))) return null;
  return () => c.clockMs(id);
}

/** Milliseconds of CPU time of the calling thread, monotonic; null where it cannot be read. */
export function threadCpuClock(): (() => number) | null {
  return cpuClock(CLOCK_THREAD_CPUTIME_ID);
}

/**
 * Milliseconds of CPU time of thread `tid` of this process (e.g. a worker thread, by its kernel
 * id), monotonic; null where it cannot be read. Once the thread has ended, reads give NaN.
 */
export function otherThreadCpuClock(tid: number): (() => number) | null {
  return cpuClock(threadCpuClockId(tid));
}

/**
 * Milliseconds of CPU time of process `pid` (every thread of it, user and system time, as
 * utime + stime in /proc/<pid>/stat but in ns), monotonic; null where it cannot be read. Once the
 * process has been reaped, reads give NaN (or, the pid reused, another process's time: callers
 * stop reading when it exits).
 */
export function processCpuClock(pid: number): (() => number) | null {
  return cpuClock(processCpuClockId(pid));
}
