// /proc/<pid>/cgroup: which cgroup v2 group a process is in.
import { readFileSync } from 'node:fs';

/**
 * The cgroup v2 path from a /proc/<pid>/cgroup text: the `0::/path` line. On hybrid hosts the
 * v1 lines (`N:controller:/path`) are ignored. A " (deleted)" suffix means the group is gone.
 */
export function parseProcCgroup(text: string): string | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith('0::')) continue;
    const path = line.slice(3);
    if (!path.startsWith('/') || path.endsWith(' (deleted)')) return null;
    return path;
  }
  return null;
}

/**
 * The cgroup v2 path of a live process as /proc writes it for the daemon: relative to the
 * daemon's cgroup namespace (`/../..` climbs above its root). For the node's path, see
 * host-cgroup-path.ts. Null: no process, or no v2 hierarchy.
 */
export function readProcCgroup(pid: number | 'self'): string | null {
  try {
    return parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  } catch {
    return null;
  }
}

/** True when `path` is `ancestor` or below it (path-segment aware: /a/b is not below /a/bc). */
export function isCgroupAtOrBelow(path: string, ancestor: string): boolean {
  if (ancestor === '/') return true;
  return path === ancestor || path.startsWith(`${ancestor}/`);
}
