// Lowering the calling thread's CPU priority. Linux keeps the nice value per thread, so a worker
// thread can yield the CPU to the rest of its process (setpriority(PRIO_PROCESS, gettid())).
// Raising a nice value needs no privilege; lowering it back would.
import { libc } from './libc.ts';

/**
 * Nice 10: competing for a core with a nice-0 thread, it gets ~10% of it (CFS weights 110 to
 * 1024). Not 19 (~1.5%): on a loaded host that starves the thread outright, and a compile then
 * runs past its wall-clock time limit (seen in the test suite on the shared 2-core VM).
 */
export const BACKGROUND_NICE = 10;

/** Sets the calling thread's nice value; returns its kernel thread id. Throws when it cannot. */
export function niceThisThread(nice: number): { tid: number } {
  const c = libc();
  const tid = c.gettid();
  const r = c.setNice(tid, nice);
  if (!r.ok) throw new Error(`setpriority(PRIO_PROCESS, ${tid}, ${nice}) failed with errno ${r.errno}`);
  return { tid };
}
