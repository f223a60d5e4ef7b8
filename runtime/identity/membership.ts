// Is a pid inside a registered VM? Decided only from what the kernel says (/proc), never from
// anything the requester sent. Callers that act on the answer must hold a pidfd for the pid
// across the check and the act (see capabilities/linux/set-memlock.ts): this module reads /proc
// by pid number, which alone cannot tell a process from a later one that reused its pid.
import type { RegisteredVm } from './vm.ts';
import { isCgroupAtOrBelow } from '../os/proc-cgroup.ts';
import type { ProcStat } from '../os/proc-stat.ts';
import { Lineage, MAX_ANCESTRY_DEPTH } from './lineage.ts';

export { MAX_ANCESTRY_DEPTH };

export type MembershipVerdict =
  | { member: true; via: 'root-pid' | 'cgroup' }
  | { member: false; reason: 'no-such-process' | 'no-anchor' | 'anchor-stale' | 'not-descendant' | 'not-in-cgroup' };

/**
 * Membership by the root-pid anchor: the process is the anchor (same pid AND same start time)
 * or a descendant of it. Every parent in the walk started no later than its child (Lineage).
 */
export function checkAncestry(lineage: Lineage, rootPid: number, rootStartTime: number): MembershipVerdict {
  for (let depth = 0; ; depth++) {
    const p = lineage.at(depth);
    if (p === null) return { member: false, reason: 'not-descendant' };
    if (p.pid === rootPid)
      return p.startTime === rootStartTime
        ? { member: true, via: 'root-pid' }
        : { member: false, reason: 'anchor-stale' };
  }
}

/** Membership of a process (given by its lineage) in `vm`, through either anchor. Fails closed. */
export function membershipOf(lineage: Lineage, vm: RegisteredVm): MembershipVerdict {
  const { rootPid, rootStartTime, cgroup } = vm.anchor;
  const hasRoot = rootPid !== undefined;
  if (!hasRoot && cgroup === undefined) return { member: false, reason: 'no-anchor' };

  let miss: MembershipVerdict = { member: false, reason: 'no-anchor' };
  if (hasRoot) {
    // A root pid without its start time cannot be told from a reused pid: never a match.
    miss =
      rootStartTime === undefined
        ? { member: false, reason: 'anchor-stale' }
        : checkAncestry(lineage, rootPid, rootStartTime);
    if (miss.member) return miss;
  }
  if (cgroup !== undefined) {
    const path = lineage.cgroup();
    if (path !== null && isCgroupAtOrBelow(path, cgroup)) return { member: true, via: 'cgroup' };
    if (!hasRoot) miss = { member: false, reason: 'not-in-cgroup' };
  }
  return miss;
}

/**
 * Membership of `pid` in `vm`. `known` is a stat of `pid` the caller already read (saves one
 * /proc read on the request path).
 */
export function checkMembership(pid: number, vm: RegisteredVm, known?: ProcStat): MembershipVerdict {
  if (vm.anchor.rootPid === undefined && vm.anchor.cgroup === undefined) return { member: false, reason: 'no-anchor' };
  const lineage = Lineage.of(pid, known);
  return lineage === null ? { member: false, reason: 'no-such-process' } : membershipOf(lineage, vm);
}

export function isMember(pid: number, vm: RegisteredVm): boolean {
  return checkMembership(pid, vm).member;
}
