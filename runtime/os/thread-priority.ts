// Lowering the calling thread's CPU priority. Linux keeps the nice value per thread, so a worker
// thread can yield the CPU to the rest of its process (setpriority(PRIO_PROCESS, gettid())):
// when both compete for a core, a nice-19 thread gets ~1.5% of it against a nice-0 one.
// Raising a nice value needs no privilege; lowering it back would.
import { libc } from './libc.ts';

/** The lowest CPU priority. */
export const LOWEST_PRIORITY_NICE = 19;

/** Sets the calling thread's nice value; returns its kernel thread id. Throws when it cannot. */
export function niceThisThread(nice: number): { tid: number } {
  const c = libc();
  const tid = c.gettid();
  const r = c.setNice(tid, nice);
  if (!r.ok) throw new Error(`setpriority(PRIO_PROCESS, ${tid}, ${nice}) failed with errno ${r.errno}`);
  return { tid };
}
