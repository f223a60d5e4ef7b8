// Kernel-verified identity: VM membership, the requester's VM, registration and anchor checks.
// The kernel's raw facts (/proc, cgroups, peer credentials, pidfds) come from ../os/.
export type { RegisteredVm, VmAnchor } from './vm.ts';
export { normalizeCgroupPath } from './cgroup-path.ts';
export { checkMembership, checkAncestry, isMember, membershipOf, type MembershipVerdict } from './membership.ts';
export { Lineage, MAX_ANCESTRY_DEPTH } from './lineage.ts';
export { resolveRequester, resolveRequesterVm, type RequesterResolution } from './resolve-requester.ts';
export { validateVmRegistration, type VmRegistrationResult } from './registration.ts';
export { checkAnchor, type AnchorRefusal } from './anchor-sanity.ts';
