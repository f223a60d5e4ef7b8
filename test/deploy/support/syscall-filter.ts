// What a unit's SystemCallFilter= lets through, resolved with systemd's own group lists
// (`systemd-analyze syscall-filter`) and systemd's merge rule: the first line, an allow list,
// sets the default (deny the rest); a later `~` line removes its calls, a later plain line adds.
import { spawnSync } from 'node:child_process';

/** Every @group systemd knows, with its direct members (calls and nested @groups). */
export function syscallGroups(): Map<string, string[]> {
  const r = spawnSync('systemd-analyze', ['syscall-filter'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`systemd-analyze syscall-filter exited ${r.status}: ${r.stderr}`);
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of r.stdout.split('\n')) {
    const entry = line.trim();
    if (entry === '' || entry.startsWith('#')) continue;
    if (!/^\s/.test(line) && entry.startsWith('@')) {
      current = [];
      groups.set(entry, current);
    } else current?.push(entry);
  }
  return groups;
}

function expand(entry: string, groups: Map<string, string[]>, seen = new Set<string>()): string[] {
  if (!entry.startsWith('@')) return [entry];
  const members = groups.get(entry);
  if (members === undefined) throw new Error(`unknown system call group ${entry}`);
  if (seen.has(entry)) return [];
  seen.add(entry);
  return members.flatMap((m) => expand(m, groups, seen));
}

/** The calls allowed by a unit's SystemCallFilter= values, in order. */
export function allowedSyscalls(filters: string[], groups = syscallGroups()): Set<string> {
  if (filters.length === 0 || filters[0]!.startsWith('~'))
    throw new Error('expected SystemCallFilter= to start with an allow list');
  const allowed = new Set<string>();
  for (const filter of filters) {
    const deny = filter.startsWith('~');
    for (const entry of (deny ? filter.slice(1) : filter).split(/\s+/).filter(Boolean)) {
      for (const call of expand(entry, groups)) {
        if (deny) allowed.delete(call);
        else allowed.add(call);
      }
    }
  }
  return allowed;
}
