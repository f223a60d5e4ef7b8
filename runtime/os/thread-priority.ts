// Lowering CPU priority. Linux keeps the nice value and the scheduling policy per thread
// (setpriority(PRIO_PROCESS, tid), sched_setscheduler(tid)), and a new thread or process starts with
// its creator's. Raising a nice value, or moving to SCHED_IDLE, needs no privilege; going back
// would.
import { readdirSync } from 'node:fs';
import { errnoName, ESRCH } from './errno.ts';
import { libc } from './libc.ts';
import { currentThreadId } from './thread-id.ts';

/** Scheduling policies (sched_setscheduler(2)) of the fair class capgate uses. */
export const SCHED_OTHER = 0;
export const SCHED_IDLE = 5;

/**
 * Nice 10, for a compile process that cannot move to SCHED_IDLE (idleThisProcess): competing for
 * a core with a nice-0 thread, it gets ~10% of it (CFS weights 110 to
 * 1024). Not 19 (~1.5%): on a loaded host that starves the thread outright, and a compile then
 * runs past its wall-clock time limit (seen in the test suite on the shared 2-core VM).
 */
export const BACKGROUND_NICE = 10;

/**
 * Nice 5 for the threads that run policies (the evaluation workers): competing for a core with
 * the daemon's main thread, which serves every VM, they get ~25% of it (CFS weights 335 to 1024),
 * and the main thread preempts them as soon as it wakes. Not lower: a policy that needs its
 * worker still gets a fair part of a busy core before its deadline. Nice 10 and SCHED_BATCH were
 * measured against it (isolation bench, floods): the main thread's wait for a CPU fell by 1-3
 * points of a loaded phase, inside the run-to-run spread (12-21%): not worth that fair part.
 */
export const EVALUATION_NICE = 5;

/** Sets the nice value of the calling thread only (its kernel id from /proc/thread-self). Throws when it cannot. */
export function niceThisThread(nice: number): void {
  const tid = currentThreadId();
  const r = libc().setNice(tid, nice);
  if (!r.ok) throw new Error(`setpriority(PRIO_PROCESS, ${tid}, ${nice}) failed: ${errnoName(r.errno)}`);
}

/**
 * Sets the nice value of every thread of this process: the ones running now (the main thread,
 * V8's and libuv's), and through them, the ones they start later. Throws when it cannot.
 */
export function niceThisProcess(nice: number): void {
  const c = libc();
  for (const name of readdirSync('/proc/self/task')) {
    const tid = Number(name);
    const r = c.setNice(tid, nice);
    // ESRCH: the thread ended between the listing and the call.
    if (!r.ok && r.errno !== ESRCH)
      throw new Error(`setpriority(PRIO_PROCESS, ${tid}, ${nice}) failed: ${errnoName(r.errno)}`);
  }
}

/**
 * Moves every thread of this process to SCHED_IDLE, keeping each one's nice value: the ones
 * running now, and through them, the ones they start later (threads and forked processes inherit
 * the policy, and exec keeps it). A SCHED_IDLE thread weighs 3 against a nice-0 thread's 1024 (nice
 * 19 weighs 15), a waking fair thread preempts it at once, and the kernel counts a core that runs
 * only such threads as idle when it places a waking thread. Throws when it cannot.
 */
export function idleThisProcess(): void {
  const c = libc();
  for (const name of readdirSync('/proc/self/task')) {
    const tid = Number(name);
    const r = c.setSchedulingPolicy(tid, SCHED_IDLE);
    // ESRCH: the thread ended between the listing and the call.
    if (!r.ok && r.errno !== ESRCH)
      throw new Error(`sched_setscheduler(${tid}, SCHED_IDLE) failed: ${errnoName(r.errno)}`);
  }
}
