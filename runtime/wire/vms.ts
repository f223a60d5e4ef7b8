// The VM registry as the admin API speaks it. Registration bodies are checked by
// runtime/identity's validateVmRegistration; the shapes are runtime/identity/vm.ts.
import type { RegisteredVm } from '../identity/vm.ts';

/** Body of register (POST) and update (PUT): a RegisteredVm as JSON. */
export type VmRegistration = RegisteredVm;

export interface VmRecord extends RegisteredVm {
  /** ISO 8601. */
  registeredAt: string;
  updatedAt: string;
}

export interface ListVmsResponse {
  vms: VmRecord[];
}

export interface VmResponse {
  vm: VmRecord;
}

export interface UnregisterVmResponse {
  unregistered: string;
}
