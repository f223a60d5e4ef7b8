// The registered VMs the request path resolves requesters against: an immutable array,
// replaced after each committed registry change.
import type { RegisteredVm } from '../../identity/vm.ts';

export class VmRegistry {
  private snapshot: readonly RegisteredVm[] = [];

  get vms(): readonly RegisteredVm[] {
    return this.snapshot;
  }

  replace(vms: readonly RegisteredVm[]): void {
    this.snapshot = Object.freeze(vms.map((v) => ({ identity: v.identity, anchor: v.anchor })));
  }
}
