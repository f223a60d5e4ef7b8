// The daemon's view of the cgroup v2 hierarchy, so cgroup anchors (node paths, as the management
// layer registers them) can be matched from inside a cgroup namespace.
//
// /proc/<pid>/cgroup and the roots in mountinfo are written relative to the READER's cgroup
// namespace. A container that is not privileged gets a namespace of its own on cgroup v2
// (containerd and CRI-O; Kubernetes has no field to share the node's), rooted at its own cgroup:
// virt-launcher's cgroup then reads as `/../../kubepods-…-pod<uid>.slice/…`. Knowing where that
// root is on the node (nsRoot) turns such a path back into the node's, by plain path arithmetic.
// nsRoot is found once: a mount of the whole hierarchy (the node's /sys/fs/cgroup as a hostPath
// volume; its root reads as `/..` repeated d times, d the depth of our namespace's root) is walked
// d levels (plus our own depth below the root) down to the group whose cgroup.procs holds the
// daemon. A kernel thread (always in the root group) tells d independently: a mount whose root
// does not match it is not the whole hierarchy.
import { type Dirent, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parseCgroup2Mounts } from './cgroup-mount.ts';
import { isKernelThread } from './kernel-thread.ts';
import { readProcCgroup } from './proc-cgroup.ts';

export type CgroupView =
  /** Paths can be told on the node: `nsRoot` is the node's path of our namespace's root ("/" in
   * the node's own namespace); `mountPoint` shows the whole hierarchy (null: no cgroup2 mount). */
  | { kind: 'resolved'; nsRoot: string; mountPoint: string | null }
  /** They cannot: cgroup anchors would never match. `problem` says why and what to do. */
  | { kind: 'unresolved'; problem: string };

/** Directories walked at most looking for the daemon's own group. */
export const MAX_CGROUP_WALK = 100_000;

/** "/" -> 0, "/.." -> 1, "/../.." -> 2; anything else (a sub-tree) -> null. */
export function climbDepth(path: string): number | null {
  if (path === '/') return 0;
  if (!/^(\/\.\.)+$/.test(path)) return null;
  return path.length / 3;
}

/**
 * The node's path for `path` as /proc wrote it in a namespace rooted at `nsRoot`, or null when it
 * climbs above the hierarchy's root or holds anything but plain segments.
 */
export function toHostCgroupPath(path: string, nsRoot: string): string | null {
  if (!path.startsWith('/') || !nsRoot.startsWith('/')) return null;
  const out = nsRoot.split('/').filter((s) => s !== '');
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (out.length === 0) return null;
      out.pop();
    } else out.push(segment);
  }
  return `/${out.join('/')}`;
}

const PID_2 = 2; // kthreadd in the node's pid namespace (the daemon runs with hostPID)

/** The group (node path under `mountPoint`) at `depth` whose cgroup.procs lists `pid`, or null. */
function findGroupOf(pid: number, mountPoint: string, depth: number, limit = MAX_CGROUP_WALK): string | null {
  let level = ['/'];
  let walked = 0;
  for (let d = 0; d < depth; d++) {
    const next: string[] = [];
    for (const group of level) {
      let entries: Dirent[];
      try {
        entries = readdirSync(join(mountPoint, group), { withFileTypes: true });
      } catch {
        continue; // removed while we walked
      }
      for (const e of entries) if (e.isDirectory()) next.push(posix.join(group, e.name));
      walked += entries.length;
      if (walked > limit) return null;
    }
    level = next;
  }
  const wanted = String(pid);
  for (const group of level) {
    try {
      if (
        readFileSync(join(mountPoint, group, 'cgroup.procs'), 'utf8')
          .split('\n')
          .includes(wanted)
      )
        return group;
    } catch {
      // removed while we walked
    }
  }
  return null;
}

const FIX =
  "mount the node's cgroup2 hierarchy into the daemon's mount namespace (on Kubernetes: a read-only hostPath volume of /sys/fs/cgroup, as deploy/kubernetes/capgate.yaml does), or anchor VMs at their root process instead";

/** Reads mountinfo, /proc and (in a cgroup namespace of its own) walks the hierarchy. */
export function resolveCgroupView(mountinfo?: string): CgroupView {
  let text = mountinfo;
  try {
    text ??= readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    text = '';
  }
  const kernelPath = isKernelThread(PID_2) ? readProcCgroup(PID_2) : null;
  const kernelDepth = kernelPath === null ? null : climbDepth(kernelPath);
  const whole = parseCgroup2Mounts(text).filter((m) => {
    const depth = climbDepth(m.root);
    return depth !== null && (kernelDepth === null || depth === kernelDepth);
  });
  const mount = whole.sort((a, b) => climbDepth(b.root)! - climbDepth(a.root)!)[0];
  if (mount === undefined) {
    if (kernelDepth === null || kernelDepth === 0) return { kind: 'resolved', nsRoot: '/', mountPoint: null };
    return {
      kind: 'unresolved',
      problem: `capgate runs in a cgroup namespace of its own (a kernel thread's cgroup reads as ${kernelPath}), and no cgroup2 mount in it shows the whole hierarchy, so the node's cgroup paths cannot be told: ${FIX}`,
    };
  }
  const depth = climbDepth(mount.root)!;
  if (depth === 0) return { kind: 'resolved', nsRoot: '/', mountPoint: mount.mountPoint };
  const self = readProcCgroup('self');
  if (self === null || self.startsWith('/..')) {
    return {
      kind: 'unresolved',
      problem: `capgate runs in a cgroup namespace of its own and its own cgroup reads as ${self ?? 'nothing'}, so the namespace's root cannot be placed on the node: ${FIX}`,
    };
  }
  const below = self.split('/').filter((s) => s !== '');
  const group = findGroupOf(process.pid, mount.mountPoint, depth + below.length);
  if (group === null) {
    return {
      kind: 'unresolved',
      problem: `capgate runs in a cgroup namespace of its own and did not find its own cgroup ${depth + below.length} levels below ${mount.mountPoint}, so the namespace's root cannot be placed on the node: ${FIX}`,
    };
  }
  const nsRoot = toHostCgroupPath(`/${'../'.repeat(below.length)}`, group) ?? '/';
  return { kind: 'resolved', nsRoot, mountPoint: mount.mountPoint };
}

let cached: CgroupView | undefined;

/** The daemon's view, resolved on first use (the daemon does it at start) and kept: a process's
 * cgroup namespace, and the place of its root, never change. */
export function cgroupView(): CgroupView {
  cached ??= resolveCgroupView();
  return cached;
}
