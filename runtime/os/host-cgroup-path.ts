// The node's cgroup v2 path of a process, whichever cgroup namespace the daemon is in
// (cgroup-namespace.ts). Null when there is none, or it cannot be told: fails closed.
import { cgroupView, toHostCgroupPath } from './cgroup-namespace.ts';
import { readProcCgroup } from './proc-cgroup.ts';

export function readCgroupPath(pid: number): string | null {
  const view = cgroupView();
  if (view.kind === 'unresolved') return null;
  const path = readProcCgroup(pid);
  if (path === null) return null;
  return view.nsRoot === '/' && !path.startsWith('/..') ? path : toHostCgroupPath(path, view.nsRoot);
}
