// A VM as registered by the trusted management layer, with a kernel-verifiable anchor.
import type { VmIdentity } from '../contract/types.ts';

export interface VmAnchor {
  /** Root process of the VM (e.g. its QEMU or launcher); its descendants are members too. */
  rootPid?: number;
  /** Start time of rootPid (field 22 of /proc/<pid>/stat, clock ticks since boot), read at
   * registration so that a reused pid never matches. Set whenever rootPid is set. */
  rootStartTime?: number;
  /** cgroup v2 path (as in /proc/<pid>/cgroup, e.g. "/kubepods/pod123"); members are at or below. */
  cgroup?: string;
}

export interface RegisteredVm {
  identity: VmIdentity;
  anchor: VmAnchor;
}
