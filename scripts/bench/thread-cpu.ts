// CPU time of a process's threads, grouped by what they do, from /proc/<pid>/task/*/stat: which
// threads a hostile load makes burn (the main thread, the evaluation workers, V8's platform
// threads that mark and sweep for every isolate in the process, libuv's pool, the WAL
// checkpoint worker). Node 20 names none of its threads, so they are told apart by name where
// capgate names them (capgate-eval, capgate-wal), and otherwise by the order Node starts them:
// the main thread, then V8's platform (its delayed-task thread and --v8-pool-size workers, 4 by
// default), then the inspector's signal thread; what comes later unnamed is libuv's pool.
import fs from 'node:fs';

/** The kernel's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const CLOCK_TICKS_PER_SECOND = 100;
/** V8's platform threads Node 20 starts right after the main thread: 1 delayed-task + 4 workers. */
const PLATFORM_THREADS = 5;

export const THREAD_GROUPS = ['main', 'capgate-eval', 'v8 platform', 'libuv pool', 'capgate-wal', 'other'] as const;
export type ThreadGroup = (typeof THREAD_GROUPS)[number];

interface ThreadSample {
  tid: number;
  comm: string;
  /** Field 22, clock ticks since boot. */
  start: number;
  cpuMs: number;
}

/** Per thread: its name, start and CPU time so far (threads that end between list and read are skipped). */
export function threadSnapshot(pid: number): Map<number, ThreadSample> {
  const out = new Map<number, ThreadSample>();
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' ');
      out.set(Number(t), {
        tid: Number(t),
        comm,
        start: Number(f[19]),
        cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS_PER_SECOND,
      });
    } catch {}
  }
  return out;
}

/** CPU ms each group of threads used between two snapshots. */
export function threadCpuBetween(
  pid: number,
  before: Map<number, ThreadSample>,
  after: Map<number, ThreadSample>,
): Record<ThreadGroup, number> {
  const groups = Object.fromEntries(THREAD_GROUPS.map((g) => [g, 0])) as Record<ThreadGroup, number>;
  const unnamed = [...after.values()]
    .filter((t) => t.tid !== pid && t.comm === 'node')
    .sort((a, b) => a.start - b.start || a.tid - b.tid);
  const rank = new Map(unnamed.map((t, i) => [t.tid, i]));
  for (const t of after.values()) {
    const spent = t.cpuMs - (before.get(t.tid)?.cpuMs ?? 0);
    const r = rank.get(t.tid);
    const group: ThreadGroup =
      t.tid === pid
        ? 'main'
        : t.comm === 'capgate-eval' || t.comm === 'capgate-wal'
          ? t.comm
          : r === undefined
            ? 'other'
            : r < PLATFORM_THREADS
              ? 'v8 platform'
              : r === PLATFORM_THREADS
                ? 'other'
                : 'libuv pool';
    groups[group] += spent;
  }
  return groups;
}
