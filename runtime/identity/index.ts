// Kernel-verified identity: /proc parsing, VM membership, registration, peer credentials.
export type { RegisteredVm, VmAnchor } from './vm.ts';
export { parseProcStat, readProcStat, readStartTime, type ProcStat } from './proc-stat.ts';
export { parseProcCgroup, readProcCgroup, isCgroupAtOrBelow } from './proc-cgroup.ts';
export { readCgroupPath } from './host-cgroup-path.ts';
export { cgroupView, resolveCgroupView, toHostCgroupPath, climbDepth, type CgroupView } from './cgroup-namespace.ts';
export { parseCgroup2Mount, parseCgroup2Mounts, detectCgroup2Mount, cgroupDirectory, type Cgroup2Mount } from './cgroup-mount.ts';
export { normalizeCgroupPath } from './cgroup-path.ts';
export { isValidPid, pidMax } from './pid.ts';
export { checkMembership, checkAncestry, isMember, membershipOf, type MembershipVerdict } from './membership.ts';
export { Lineage, MAX_ANCESTRY_DEPTH } from './lineage.ts';
export { resolveRequester, resolveRequesterVm, type RequesterResolution } from './resolve-requester.ts';
export { resolvePeerVm, type PeerResolution } from './resolve-peer.ts';
export { validateVmRegistration, type VmRegistrationResult } from './registration.ts';
export { checkAnchor, type AnchorRefusal } from './anchor-sanity.ts';
export { isKernelThread } from './kernel-thread.ts';
export { parseNsPid, readNsPid } from './proc-nspid.ts';
export { namespacePosition, type NamespacePosition } from './pid-namespace-top.ts';
export { translateTargetPid, TranslationCache, MAX_TRANSLATION_CANDIDATES, SEARCH_SLICE, type TargetTranslation, type TranslationOptions, type Requester } from './target-translation.ts';
export { SearchBudget, PER_VM_SEARCH, ALL_VMS_SEARCH, type BucketSize } from './search-budget.ts';
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
