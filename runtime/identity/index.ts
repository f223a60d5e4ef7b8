// Kernel-verified identity: /proc parsing, VM membership, registration, peer credentials.
export type { RegisteredVm, VmAnchor } from './vm.ts';
export { parseProcStat, readProcStat, readStartTime, type ProcStat } from './proc-stat.ts';
export { parseProcCgroup, readCgroupPath, isCgroupAtOrBelow } from './proc-cgroup.ts';
export { parseCgroup2Mount, detectCgroup2Mount, cgroupDirectory, type Cgroup2Mount } from './cgroup-mount.ts';
export { normalizeCgroupPath } from './cgroup-path.ts';
export { isValidPid, pidMax } from './pid.ts';
export { checkMembership, checkAncestry, isMember, membershipOf, type MembershipVerdict } from './membership.ts';
export { Lineage, MAX_ANCESTRY_DEPTH } from './lineage.ts';
export { resolveRequester, resolveRequesterVm, type RequesterResolution } from './resolve-requester.ts';
export { validateVmRegistration, type VmRegistrationResult } from './registration.ts';
export { checkAnchor, type AnchorRefusal } from './anchor-sanity.ts';
export { isKernelThread } from './kernel-thread.ts';
export {
  readPeerCredentials,
  tryReadPeerCredentials,
  peerStillConnected,
  releasePeerCredentials,
  PeerCredentialsError,
  type PeerCredentials,
  type PeerCredentialsResult,
} from './peer-credentials.ts';
export { socketFd } from './socket-fd.ts';
