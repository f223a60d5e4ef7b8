// Kernel-verified identity: VM membership, the requester's VM, registration and anchor checks.
// The kernel's raw facts (/proc, cgroups, peer credentials, pidfds) come from ../os/.
export type { RegisteredVm, VmAnchor } from './vm.ts';
export { normalizeCgroupPath } from './cgroup-path.ts';
export { checkMembership, checkAncestry, isMember, membershipOf, type MembershipVerdict } from './membership.ts';
export { Lineage, MAX_ANCESTRY_DEPTH } from './lineage.ts';
export { resolveRequester, resolveRequesterVm, type RequesterResolution } from './resolve-requester.ts';
export { validateVmRegistration, type VmRegistrationResult } from './registration.ts';
export { checkAnchor, type AnchorRefusal } from './anchor-sanity.ts';
export { namespacePosition, type NamespacePosition } from './pid-namespace-top.ts';
export {
  translateTargetPid,
  TranslationCache,
  MAX_TRANSLATION_CANDIDATES,
  SEARCH_SLICE,
  type TargetTranslation,
  type TranslationOptions,
  type Requester,
} from './target-translation.ts';
export { SearchBudget, PER_VM_SEARCH, ALL_VMS_SEARCH, type BucketSize } from './search-budget.ts';
