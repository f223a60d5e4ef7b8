// The processes in a cgroup v2 subtree, from its cgroup.procs files (the cgroup and every group
// below it), for registration checks. Bounded: a subtree larger than the limit is reported as such.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupView } from './cgroup-namespace.ts';
import { posix } from 'node:path';

export const MAX_CGROUP_PROCESSES = 65_536;

export type CgroupProcesses = { kind: 'listed'; pids: number[] } | { kind: 'unavailable' } | { kind: 'too-many' };

/** Pids in `cgroup` (a node path) and below it; 'unavailable' when the hierarchy (or this group) is not visible here. */
export function cgroupProcesses(cgroup: string, limit = MAX_CGROUP_PROCESSES): CgroupProcesses {
  const view = cgroupView();
  if (view.kind !== 'resolved' || view.mountPoint === null) return { kind: 'unavailable' };
  const dir = posix.join(view.mountPoint, cgroup);
  const pids: number[] = [];
  const pending = [dir];
  let first = true;
  while (pending.length > 0) {
    const d = pending.pop()!;
    let text: string;
    let entries: string[];
    try {
      text = readFileSync(join(d, 'cgroup.procs'), 'utf8');
      entries = readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      if (first) return { kind: 'unavailable' }; // the group does not exist (yet): it holds nothing
      continue; // a child group removed while we walked
    }
    first = false;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      pids.push(Number(line));
      if (pids.length > limit) return { kind: 'too-many' };
    }
    for (const e of entries) pending.push(join(d, e));
  }
  return { kind: 'listed', pids };
}
