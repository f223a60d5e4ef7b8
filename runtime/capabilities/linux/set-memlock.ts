// set-memlock on Linux, inside a pidfd sandwich:
//   pidfd_open(pid) -> read start time -> membership in the scope VM -> pidfd still alive?
//   -> prlimit(pid) -> pidfd still alive and start time unchanged?
// The pidfd pins the process we checked: if it is alive after prlimit, the pid number was
// never free in between, so prlimit acted on the process we verified. If it is not, the caller
// hears `no-such-process`. (Linux has no prlimit-by-pidfd, so the act itself is by number; the
// only residual window is the target exiting, being reaped and its pid reused between the last
// liveness check and prlimit — microseconds — and even then it is reported, never silent.)
import { readFileSync } from 'node:fs';
import { MEMLOCK_UNLIMITED } from '../../contract/types.ts';
import type { RegisteredVm } from '../../identity/vm.ts';
import type { SetMemlockResult } from '../capabilities.ts';
import { checkMembership } from '../../identity/membership.ts';
import { isValidPid, pidMax } from '../../identity/pid.ts';
import { readProcStat, readStartTime } from '../../identity/proc-stat.ts';
import { capabilityErrorForErrno, EINVAL, ENOENT, errnoName, ESRCH } from './errno.ts';
import { closeFd, openPidfd, pidfdIsAlive } from './pidfd.ts';
import { setMemlockRaw } from './prlimit.ts';

/** /proc/<tid>/status exists for threads too; its Tgid names the process they belong to. */
function isThreadId(pid: number): boolean {
  try {
    const tgid = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return tgid !== undefined && Number(tgid) !== pid;
  } catch {
    return false;
  }
}

const gone = (pid: number): SetMemlockResult => ({
  ok: false,
  error: 'no-such-process',
  detail: `pid ${pid} exited or was replaced by another process during the operation`,
});

export function validateMemlockArguments(pid: number, bytes: bigint): SetMemlockResult | null {
  if (!isValidPid(pid)) return { ok: false, error: 'invalid-argument', detail: `pid ${pid} is not in [1, ${pidMax()})` };
  if (typeof bytes !== 'bigint' || bytes < 0n || bytes > MEMLOCK_UNLIMITED) {
    return { ok: false, error: 'invalid-argument', detail: `bytes ${String(bytes)} is not a u64` };
  }
  return null;
}

/** Test seam: runs between the last check and prlimit, where a real race would strike. */
export interface SandwichProbe {
  beforeAct?: () => void;
}

export function setMemlockInScope(scope: RegisteredVm, pid: number, bytes: bigint, probe: SandwichProbe = {}): SetMemlockResult {
  const invalid = validateMemlockArguments(pid, bytes);
  if (invalid !== null) return invalid;

  const opened = openPidfd(pid);
  if (!opened.ok) {
    if (opened.errno === ESRCH) return { ok: false, error: 'no-such-process', detail: `pid ${pid} does not exist` };
    // pidfd_open refuses thread ids of non-leader threads (EINVAL; ENOENT since pidfs, 6.9);
    // rlimits belong to the whole process anyway.
    if (opened.errno === EINVAL || opened.errno === ENOENT) {
      if (isThreadId(pid)) return { ok: false, error: 'invalid-argument', detail: `pid ${pid} is a thread id, not a process id` };
      if (opened.errno === ENOENT) return { ok: false, error: 'no-such-process', detail: `pid ${pid} does not exist` };
    }
    return { ok: false, error: 'internal', detail: `pidfd_open(${pid}) failed: ${errnoName(opened.errno)}` };
  }
  const pidfd = opened.pidfd;
  try {
    const stat = readProcStat(pid);
    if (stat === null) return gone(pid);
    const startTime = stat.startTime;
    const membership = checkMembership(pid, scope, stat);
    // Membership was read by pid number: it is about our process only if that one still lives.
    if (!pidfdIsAlive(pidfd)) return gone(pid);
    if (!membership.member) {
      return { ok: false, error: 'out-of-scope', detail: `pid ${pid} is not inside VM ${scope.identity.uuid} (${membership.reason})` };
    }
    probe.beforeAct?.();
    const r = setMemlockRaw(pid, bytes);
    const stillOurs = pidfdIsAlive(pidfd) && readStartTime(pid) === startTime;
    if (!stillOurs) return gone(pid);
    if (!r.ok) {
      const error = capabilityErrorForErrno(r.errno);
      const why = error === 'not-permitted' ? ' (raising a hard limit needs CAP_SYS_RESOURCE)' : '';
      return { ok: false, error, detail: `prlimit(${pid}, RLIMIT_MEMLOCK): ${errnoName(r.errno)}${why}` };
    }
    return { ok: true };
  } finally {
    closeFd(pidfd);
  }
}
