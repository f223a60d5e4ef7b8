// Start-up check for the daemon: refuse to run where the real capabilities cannot work.
import { readFileSync, readlinkSync } from 'node:fs';
import { detectCgroup2Mount, type Cgroup2Mount } from './cgroup-mount.ts';
import { cgroupView, type CgroupView } from './cgroup-namespace.ts';
import { readProcStat } from './proc-stat.ts';
import { errnoName, ENOSYS } from './errno.ts';
import { libc, LibcUnavailableError } from './libc.ts';
import { closeFd, openPidfd } from './pidfd.ts';
import { getMemlock } from './prlimit.ts';

export interface LinuxSupport {
  /** `uname -r`, from /proc/sys/kernel/osrelease. */
  kernelRelease: string;
  /** cgroup v2 mount, or null (then cgroup anchors never match; root-pid anchors still work). */
  cgroup2: Cgroup2Mount | null;
  /** Whether the node's cgroup paths can be told from the daemon's cgroup namespace. */
  cgroupView: CgroupView;
  /** Whether this process holds CAP_SYS_RESOURCE (needed to RAISE hard memlock limits). */
  canRaiseHardLimit: boolean;
}

export class LinuxSupportError extends Error {
  override readonly name = 'LinuxSupportError';
}

const CAP_SYS_RESOURCE = 24n;

/** Our pid as /proc numbers it (the /proc/self link), or null. */
function procSelf(): number | null {
  try {
    return Number(readlinkSync('/proc/self'));
  } catch {
    return null;
  }
}

function hasEffectiveCapability(bit: bigint): boolean {
  try {
    const line = readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('CapEff:'));
    if (line === undefined) return false;
    return ((BigInt(`0x${line.slice(7).trim()}`) >> bit) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** Throws LinuxSupportError saying what is missing and what to do; returns what was found. */
export function assertLinuxSupport(): LinuxSupport {
  try {
    libc();
  } catch (e) {
    if (e instanceof LibcUnavailableError) throw new LinuxSupportError(`capgate cannot start: ${e.message}`);
    throw e;
  }
  if (readProcStat(process.pid) === null) {
    throw new LinuxSupportError(
      "capgate cannot start: /proc is not mounted (or hides our own process); mount procfs with hidepid=0 in the daemon's namespace.",
    );
  }
  // Peer pids (SO_PEERCRED) are in the daemon's pid namespace; /proc must number processes alike.
  if (procSelf() !== process.pid) {
    throw new LinuxSupportError(
      `capgate cannot start: /proc belongs to another pid namespace (it calls this process ${procSelf() ?? 'nothing'}, the kernel ${process.pid}); mount a procfs of the daemon's own pid namespace.`,
    );
  }
  const pidfd = openPidfd(process.pid);
  if (!pidfd.ok) {
    const hint =
      pidfd.errno === ENOSYS
        ? 'the kernel is older than 5.3 (no pidfd_open); capgate needs Linux >= 5.3, >= 6.5 for SO_PEERPIDFD'
        : 'check seccomp filters on the daemon';
    throw new LinuxSupportError(`capgate cannot start: pidfd_open failed with ${errnoName(pidfd.errno)}: ${hint}.`);
  }
  closeFd(pidfd.pidfd);
  const own = getMemlock(process.pid);
  if (!own.ok)
    throw new LinuxSupportError(
      `capgate cannot start: prlimit(RLIMIT_MEMLOCK) failed with ${errnoName(own.errno)}; check seccomp filters on the daemon.`,
    );
  let kernelRelease = 'unknown';
  try {
    kernelRelease = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // Informational only.
  }
  return {
    kernelRelease,
    cgroup2: detectCgroup2Mount(),
    cgroupView: cgroupView(),
    canRaiseHardLimit: hasEffectiveCapability(CAP_SYS_RESOURCE),
  };
}
