// Every process the daemon's /proc shows, by pid: the fallback enumeration when a VM's processes
// cannot be listed from its cgroup. Bounded, like cgroup-processes.ts.
import { readdirSync } from 'node:fs';

export type ProcPids = { kind: 'listed'; pids: number[] } | { kind: 'unavailable' } | { kind: 'too-many' };

export function listProcPids(limit: number): ProcPids {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return { kind: 'unavailable' };
  }
  const pids: number[] = [];
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 0x31 || c > 0x39 || !/^[1-9][0-9]*$/.test(name)) continue;
    pids.push(Number(name));
    if (pids.length > limit) return { kind: 'too-many' };
  }
  return { kind: 'listed', pids };
}
