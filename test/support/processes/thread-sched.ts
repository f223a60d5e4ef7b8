// A thread's scheduling policy as the kernel reports it in /proc/<pid>/task/<tid>/sched
// (0 SCHED_OTHER, 3 SCHED_BATCH, 5 SCHED_IDLE).
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadSched {
  tid: number;
  policy: number;
}

function field(text: string, name: string): number {
  const m = new RegExp(`^${name.replace('.', '\\.')}\\s*:\\s*(\\d+)`, 'm').exec(text);
  return m === null ? Number.NaN : Number(m[1]);
}

/** One thread's; undefined if it ended meanwhile. */
export function threadSched(pid: number, tid: number): ThreadSched | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8');
  } catch {
    return undefined;
  }
  return { tid, policy: field(text, 'policy') };
}

/** Every thread's of `pid` (those that end while this reads are left out; none if the process is gone). */
export function processSched(pid: number): ThreadSched[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tids.map((t) => threadSched(pid, Number(t))).filter((s): s is ThreadSched => s !== undefined);
}
