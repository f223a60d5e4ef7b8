// CPU affinity for the benches' processes, through util-linux's taskset (Debian's essential set):
// `pinAll` moves every thread a process has now; the threads and processes it starts later inherit
// the affinity of the thread that starts them.
import { execFileSync } from 'node:child_process';

/** The CPUs a process may run on now. */
export function cpusOf(pid: number): number[] {
  return affinityOf(pid)
    .split(',')
    .flatMap((range) => {
      const [from, to = from] = range.split('-').map(Number) as [number, number?];
      return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    });
}

/** The CPU list a process may run on now, as taskset prints it (e.g. "0,1" or "0-3"). */
export function affinityOf(pid: number): string {
  const out = execFileSync('taskset', ['-p', '-c', String(pid)], { encoding: 'utf8' });
  const list = out.slice(out.lastIndexOf(':') + 1).trim();
  if (!/^[0-9,-]+$/.test(list)) throw new Error(`taskset printed no CPU list for ${pid}: ${out.trim()}`);
  return list;
}

/** Puts every thread of `pid` on `cpus` (a CPU number or a taskset list). */
export function pinAll(pid: number, cpus: number | string): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpus), String(pid)], { stdio: 'ignore' });
}
