// The bottom half of the pidfd sandwich, shared by every capability that takes a pid:
//   pidfd_open(pid) -> membership in the scope VM (read from /proc by pid number) -> pidfd alive?
// If the pidfd is alive after the check, the pid number was never free in between (a number is
// released only once its process has been reaped, which is also when the pidfd starts reporting
// ESRCH), so the /proc reads were about the process the pidfd holds.
import type { RegisteredVm } from '../../identity/vm.ts';
import { checkMembership, type MembershipVerdict } from '../../identity/membership.ts';
import { readProcStat, type ProcStat } from '../../os/proc-stat.ts';
import { closeFd, openPidfd, pidfdIsAlive } from '../../os/pidfd.ts';

/** A process pinned by its pidfd, and its membership in the scope VM as checked through it. */
export interface CheckedTarget {
  pidfd: number;
  verdict: MembershipVerdict;
  /** Its start time (clock ticks since boot): with the pid, it names this process forever. */
  startTime: number;
}

/** Does `target` (checked for `pid`) break the pin, i.e. is it not the pinned process? */
export function breaksPin(target: CheckedTarget, pid: number, pinned: PinnedTarget | undefined): boolean {
  return pinned !== undefined && pinned.pid === pid && target.startTime !== pinned.startTime;
}

/** Why no target could be checked: pidfd_open refused (errno), or the process went away. */
export type TargetFailure = { kind: 'open-failed'; errno: number } | { kind: 'gone' };

/**
 * A process the daemon resolved before the evaluation (a target pid translated from the
 * requester's pid namespace), named by pid and start time: a check of that pid passes only for
 * that very process, not one that reused its pid since.
 */
export interface PinnedTarget {
  pid: number;
  startTime: number;
}

export type TargetCheck = { ok: true; target: CheckedTarget } | { ok: false; failure: TargetFailure };

/** Opens a pidfd for `pid` and checks its membership; the caller owns (closes) the pidfd on success. */
export function checkTarget(scope: RegisteredVm, pid: number, pinned?: PinnedTarget): TargetCheck {
  const opened = openPidfd(pid);
  if (!opened.ok) return { ok: false, failure: { kind: 'open-failed', errno: opened.errno } };
  let verdict: MembershipVerdict;
  let stat: ProcStat | null;
  try {
    stat = readProcStat(pid);
    verdict = stat === null ? { member: false, reason: 'no-such-process' } : checkMembership(pid, scope, stat);
  } catch (e) {
    closeFd(opened.pidfd);
    throw e;
  }
  // Membership was read by pid number: it is about our process only if that one still lives.
  if (stat === null || (!verdict.member && verdict.reason === 'no-such-process') || !pidfdIsAlive(opened.pidfd)) {
    closeFd(opened.pidfd);
    return { ok: false, failure: { kind: 'gone' } };
  }
  const target = { pidfd: opened.pidfd, verdict, startTime: stat.startTime };
  // Another process holds the pinned pid now (the pinned one exited and its pid was reused).
  if (breaksPin(target, pid, pinned)) {
    closeFd(opened.pidfd);
    return { ok: false, failure: { kind: 'gone' } };
  }
  return { ok: true, target };
}
