// What a VM's anchor may cover, checked at registration against the kernel's view now: a VM's
// policy acts on the VM's members, so an anchor must cover only the VM's own processes.
//
// Refused with 422 (no VM may have this anchor):
//   - pid 1, the daemon itself, any ancestor of the daemon, or a cgroup holding one of them:
//     every host process, or the daemon, would be a member;
//   - a kernel thread;
//   - any cgroup, while the daemon cannot tell the node's cgroup paths (cgroup-namespace.ts): it
//     would never match, and the VM's requests would all be denied without a word why.
// Refused with 409 (it overlaps another VM, which the message names):
//   - an anchor inside another VM (its root process is a member of that VM);
//   - an anchor whose tree holds another VM's anchor (that VM's live root process would be a
//     member of this one);
//   - a cgroup at, above or below another VM's cgroup;
//   - a process tree and a cgroup that share a process (one in the cgroup's subtree descending
//     from the tree's root), whichever of the two VMs has which.
// Pid anchors are (pid, start time): a VM whose root process exited matches nothing, so it
// overlaps nothing (its former children were re-parented out of its tree). The VM being updated
// is not compared with itself.
import type { VmIdentity } from '../contract/types.ts';
import type { RegisteredVm } from './vm.ts';
import { cgroupView } from '../os/cgroup-namespace.ts';
import { cgroupProcesses } from '../os/cgroup-processes.ts';
import { isKernelThread } from '../os/kernel-thread.ts';
import { Lineage } from './lineage.ts';
import { membershipOf } from './membership.ts';
import { isCgroupAtOrBelow } from '../os/proc-cgroup.ts';

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
    out.push({
      pid: p.pid,
      startTime: p.startTime,
      comm: p.comm,
      role: p.pid === 1 ? 'init' : depth === 0 ? 'daemon' : 'ancestor',
    });
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
  const view = cgroupView();
  if (cgroup !== undefined && view.kind === 'unresolved')
    return { kind: 'invalid-anchor', message: `anchor.cgroup ${cgroup} could never match: ${view.problem}` };
  if (rootPid !== undefined && isKernelThread(rootPid)) {
    return {
      kind: 'invalid-anchor',
      message: `anchor.rootPid ${rootPid} is a kernel thread, not a VM's process; anchor the VM at its launcher or QEMU process`,
    };
  }
  const fix =
    "the VM's policy could act on host processes; anchor the VM at its own launcher or QEMU process, or its own cgroup";
  const host = protectedProcesses(daemonPid);
  // The anchor is one of them (validateVmRegistration pinned rootStartTime to the live process).
  const itself = host.find((p) => p.pid === rootPid && p.startTime === vm.anchor.rootStartTime);
  if (itself !== undefined)
    return { kind: 'invalid-anchor', message: `anchor.rootPid ${rootPid} is ${describe(itself)}: ${fix}` };
  // Or one of them would be a member: below the anchored process, or in the anchored cgroup.
  for (const p of host) {
    const lineage = Lineage.of(p.pid);
    if (lineage === null || lineage.self.startTime !== p.startTime) continue; // exited meanwhile
    const member = membershipOf(lineage, vm);
    if (!member.member) continue;
    const subject =
      member.via === 'cgroup' ? `anchor.cgroup ${cgroup} holds` : `anchor.rootPid ${rootPid} is an ancestor of`;
    return { kind: 'invalid-anchor', message: `${subject} ${describe(p)}: ${fix}` };
  }
  return null;
}

const pidView = (vm: RegisteredVm): RegisteredVm => ({
  identity: vm.identity,
  anchor: { rootPid: vm.anchor.rootPid, rootStartTime: vm.anchor.rootStartTime },
});

/** Is the VM's root process alive (same pid AND start time)? Its lineage, or null. */
function liveRoot(vm: RegisteredVm): Lineage | null {
  const { rootPid, rootStartTime } = vm.anchor;
  if (rootPid === undefined || rootStartTime === undefined) return null;
  const lineage = Lineage.of(rootPid);
  return lineage !== null && lineage.self.startTime === rootStartTime ? lineage : null;
}

/** The first process in `cgroup`'s subtree that is in `pidVm`'s process tree, or null. */
function sharedProcess(cgroup: string, pidVm: RegisteredVm): number | null {
  const listed = cgroupProcesses(cgroup);
  if (listed.kind !== 'listed') return null; // not visible here: only the root-process checks apply
  for (const pid of listed.pids) {
    const lineage = Lineage.of(pid);
    if (lineage !== null && membershipOf(lineage, pidVm).member) return pid;
  }
  return null;
}

/**
 * Would some process be a member of both VMs? Each anchor of one against each of the other's:
 * two process trees share a process only when one root is in the other's tree; two cgroups only
 * when one is at or below the other; a tree and a cgroup when a process of the cgroup's subtree
 * descends from the tree's root.
 */
function overlap(vm: RegisteredVm, other: RegisteredVm): AnchorRefusal | null {
  const conflict = (message: string): AnchorRefusal => ({
    kind: 'conflict',
    vm: other.identity,
    message: `${message}: a process would be in both VMs, so each VM's policy could act on the other's`,
  });
  const theirs = named(other.identity);
  const { rootPid, cgroup } = vm.anchor;
  const ours = liveRoot(vm);
  if (ours !== null) {
    const inside = membershipOf(ours, other);
    if (inside.member) {
      const how =
        inside.via === 'cgroup'
          ? `in its cgroup ${other.anchor.cgroup}`
          : rootPid === other.anchor.rootPid
            ? 'its root process'
            : `a descendant of its root process ${other.anchor.rootPid}`;
      return conflict(`anchor.rootPid ${rootPid} is inside ${theirs} (${how})`);
    }
  }
  const theirRoot = liveRoot(other);
  if (theirRoot !== null && membershipOf(theirRoot, vm).member) {
    return conflict(`the anchor holds the root process (pid ${other.anchor.rootPid}) of ${theirs}`);
  }
  if (cgroup !== undefined && other.anchor.cgroup !== undefined) {
    const c = other.anchor.cgroup;
    if (isCgroupAtOrBelow(cgroup, c) || isCgroupAtOrBelow(c, cgroup)) {
      const where =
        cgroup === c ? 'is the cgroup' : isCgroupAtOrBelow(cgroup, c) ? 'is below the cgroup' : 'is above the cgroup';
      return conflict(`anchor.cgroup ${cgroup} ${where} ${c} of ${theirs}`);
    }
  }
  // A process tree and a cgroup that share a process below their roots.
  if (ours !== null && other.anchor.cgroup !== undefined) {
    const pid = sharedProcess(other.anchor.cgroup, pidView(vm));
    if (pid !== null)
      return conflict(
        `the process tree of anchor.rootPid ${rootPid} holds pid ${pid}, which is in the cgroup ${other.anchor.cgroup} of ${theirs}`,
      );
  }
  if (theirRoot !== null && cgroup !== undefined) {
    const pid = sharedProcess(cgroup, pidView(other));
    if (pid !== null)
      return conflict(`anchor.cgroup ${cgroup} holds pid ${pid}, which is in the process tree of ${theirs}`);
  }
  return null;
}

/**
 * Why `vm` may not be registered (or updated) beside the VMs already registered, or null.
 * Reads /proc: O(VMs x ancestry depth) reads, on the admin path only.
 */
export function checkAnchor(
  vm: RegisteredVm,
  registered: readonly RegisteredVm[],
  daemonPid: number = process.pid,
): AnchorRefusal | null {
  const invalid = invalidForHost(vm, daemonPid);
  if (invalid !== null) return invalid;
  for (const other of registered) {
    if (other.identity.uuid === vm.identity.uuid) continue; // an update is not compared with itself
    const refusal = overlap(vm, other);
    if (refusal !== null) return refusal;
  }
  return null;
}
