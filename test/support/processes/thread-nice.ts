// Nice values per thread, read from /proc: Linux keeps the nice value per thread.
import { readdirSync, readFileSync } from 'node:fs';

/** The nice value of each thread of `pid`, by kernel thread id (threads that end meanwhile are left out). */
export function threadNices(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Field 19 is the nice value; the fields after the comm's ')' start at field 3.
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {}
  }
  return out;
}
