// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on unified hosts,
// /sys/fs/cgroup/unified on hybrid ones. Found from /proc/self/mountinfo, never assumed.
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';

export interface Cgroup2Mount {
  /** Where the hierarchy is mounted in our mount namespace. */
  mountPoint: string;
  /** Which cgroup of the hierarchy is at mountPoint ("/" unless a sub-tree is bind-mounted). */
  root: string;
}

// mountinfo escapes space, tab, newline and backslash as octal.
const unescapeOctal = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/** The first cgroup2 mount in a /proc/self/mountinfo text, or null. */
export function parseCgroup2Mount(mountinfo: string): Cgroup2Mount | null {
  return parseCgroup2Mounts(mountinfo)[0] ?? null;
}

/**
 * Every cgroup2 mount in a /proc/self/mountinfo text, in order. `root` is written relative to the
 * READER's cgroup namespace: in a namespace of its own, a mount of the whole hierarchy reads as
 * `/..` repeated once per level the namespace's root is below the hierarchy's.
 */
export function parseCgroup2Mounts(mountinfo: string): Cgroup2Mount[] {
  const out: Cgroup2Mount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup2') continue;
    const fields = line.slice(0, sep).split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (root === undefined || mountPoint === undefined) continue;
    out.push({ mountPoint: unescapeOctal(mountPoint), root: unescapeOctal(root) });
  }
  return out;
}

export function detectCgroup2Mount(): Cgroup2Mount | null {
  try {
    return parseCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return null;
  }
}

/** The directory of cgroup `path` under `mount`, or null when the mount does not expose it. */
export function cgroupDirectory(mount: Cgroup2Mount, path: string): string | null {
  if (mount.root === '/') return posix.join(mount.mountPoint, path);
  if (path !== mount.root && !path.startsWith(`${mount.root}/`)) return null;
  return posix.join(mount.mountPoint, path.slice(mount.root.length));
}
