// A VM as registered by the trusted management layer, with a kernel-verifiable anchor. The
// shapes are the wire's (runtime/wire/schemas/vms.ts): the admin API registers and shows them.
export type { RegisteredVm, VmAnchor } from '../wire/index.ts';
