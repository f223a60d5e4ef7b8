// What a VM's anchor may cover, checked at registration against the kernel's view now: a VM's
// policy acts on the VM's members, so an anchor must cover only the VM's own processes.
//
// Refused with 422 (no VM may have this anchor):
//   - pid 1, the daemon itself, any ancestor of the daemon, or a cgroup holding one of them:
//     every host process, or the daemon, would be a member;
//   - a kernel thread.
// Refused with 409 (it overlaps another VM, which the message names):
//   - an anchor inside another VM (its root process is a member of that VM);
//   - an anchor whose tree holds another VM's anchor (that VM's live root process would be a
//     member of this one);
//   - a cgroup at, above or below another VM's cgroup.
// Pid anchors are (pid, start time): a VM whose root process exited matches nothing, so it
// overlaps nothing (its former children were re-parented out of its tree). The VM being updated
// is not compared with itself.
import type { VmIdentity } from '../contract/types.ts';
import type { RegisteredVm } from './vm.ts';
import { isKernelThread } from './kernel-thread.ts';
import { Lineage } from './lineage.ts';
import { membershipOf } from './membership.ts';
import { isCgroupAtOrBelow } from './proc-cgroup.ts';

export type AnchorRefusal =
  /** No VM may have this anchor (HTTP 422). */
  | { kind: 'invalid-anchor'; message: string }
  /** It overlaps `vm` (HTTP 409). */
  | { kind: 'conflict'; message: string; vm: VmIdentity };

const named = (vm: VmIdentity): string => `VM "${vm.name}" (${vm.uuid})`;

interface Protected {
  pid: number;
  startTime: number;
  comm: string;
  role: 'init' | 'daemon' | 'ancestor';
}

/** pid 1, the daemon, and the daemon's ancestors, as /proc shows them now. */
function protectedProcesses(daemonPid: number): Protected[] {
  const out: Protected[] = [];
  const lineage = Lineage.of(daemonPid);
  for (let depth = 0; lineage !== null; depth++) {
    const p = lineage.at(depth);
    if (p === null) break;
    out.push({ pid: p.pid, startTime: p.startTime, comm: p.comm, role: p.pid === 1 ? 'init' : depth === 0 ? 'daemon' : 'ancestor' });
  }
  if (!out.some((p) => p.pid === 1)) {
    const init = Lineage.of(1);
    if (init !== null) out.push({ pid: 1, startTime: init.self.startTime, comm: init.self.comm, role: 'init' });
  }
  return out;
}

function describe(p: Protected): string {
  switch (p.role) {
    case 'init':
      return 'pid 1 (init), from which every process on the host descends';
    case 'daemon':
      return `the capgate daemon itself (pid ${p.pid})`;
    case 'ancestor':
      return `pid ${p.pid} (${p.comm}), an ancestor of the capgate daemon`;
  }
}

function invalidForHost(vm: RegisteredVm, daemonPid: number): AnchorRefusal | null {
  const { rootPid, cgroup } = vm.anchor;
  if (rootPid !== undefined && isKernelThread(rootPid)) {
    return { kind: 'invalid-anchor', message: `anchor.rootPid ${rootPid} is a kernel thread, not a VM's process; anchor the VM at its launcher or QEMU process` };
  }
  const fix = "the VM's policy could act on host processes; anchor the VM at its own launcher or QEMU process, or its own cgroup";
  const host = protectedProcesses(daemonPid);
  // The anchor is one of them (validateVmRegistration pinned rootStartTime to the live process).
  const itself = host.find((p) => p.pid === rootPid && p.startTime === vm.anchor.rootStartTime);
  if (itself !== undefined) return { kind: 'invalid-anchor', message: `anchor.rootPid ${rootPid} is ${describe(itself)}: ${fix}` };
  // Or one of them would be a member: below the anchored process, or in the anchored cgroup.
  for (const p of host) {
    const lineage = Lineage.of(p.pid);
    if (lineage === null || lineage.self.startTime !== p.startTime) continue; // exited meanwhile
    const member = membershipOf(lineage, vm);
    if (!member.member) continue;
    const subject = member.via === 'cgroup' ? `anchor.cgroup ${cgroup} holds` : `anchor.rootPid ${rootPid} is an ancestor of`;
    return { kind: 'invalid-anchor', message: `${subject} ${describe(p)}: ${fix}` };
  }
  return null;
}

function overlap(vm: RegisteredVm, other: RegisteredVm): AnchorRefusal | null {
  const { rootPid, cgroup } = vm.anchor;
  if (rootPid !== undefined) {
    const lineage = Lineage.of(rootPid);
    const inside = lineage === null ? null : membershipOf(lineage, other);
    if (inside?.member) {
      const how = inside.via === 'cgroup' ? `in its cgroup ${other.anchor.cgroup}` : rootPid === other.anchor.rootPid ? 'its root process' : `a descendant of its root process ${other.anchor.rootPid}`;
      return { kind: 'conflict', vm: other.identity, message: `anchor.rootPid ${rootPid} is inside ${named(other.identity)}: ${how}` };
    }
  }
  if (cgroup !== undefined && other.anchor.cgroup !== undefined) {
    const theirs = other.anchor.cgroup;
    if (isCgroupAtOrBelow(cgroup, theirs) || isCgroupAtOrBelow(theirs, cgroup)) {
      const where = cgroup === theirs ? 'is the cgroup' : isCgroupAtOrBelow(cgroup, theirs) ? 'is below the cgroup' : 'is above the cgroup';
      return { kind: 'conflict', vm: other.identity, message: `anchor.cgroup ${cgroup} ${where} ${theirs} of ${named(other.identity)}` };
    }
  }
  const { rootPid: theirRoot, rootStartTime: theirStart } = other.anchor;
  if (theirRoot !== undefined && theirStart !== undefined) {
    const theirs = Lineage.of(theirRoot);
    // Only their live root process counts (same pid AND start time): a reused pid is not theirs.
    if (theirs !== null && theirs.self.startTime === theirStart && membershipOf(theirs, vm).member) {
      return { kind: 'conflict', vm: other.identity, message: `the anchor holds the root process (pid ${theirRoot}) of ${named(other.identity)}: that VM would be inside this one` };
    }
  }
  return null;
}

/**
 * Why `vm` may not be registered (or updated) beside the VMs already registered, or null.
 * Reads /proc: O(VMs x ancestry depth) reads, on the admin path only.
 */
export function checkAnchor(vm: RegisteredVm, registered: readonly RegisteredVm[], daemonPid: number = process.pid): AnchorRefusal | null {
  const invalid = invalidForHost(vm, daemonPid);
  if (invalid !== null) return invalid;
  for (const other of registered) {
    if (other.identity.uuid === vm.identity.uuid) continue; // an update is not compared with itself
    const refusal = overlap(vm, other);
    if (refusal !== null) return refusal;
  }
  return null;
}
