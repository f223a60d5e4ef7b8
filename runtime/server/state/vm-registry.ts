// The registered VMs the request path resolves requesters against: an immutable array,
// replaced after each committed registry change. `generation` changes with every replacement,
// so whatever was derived from one snapshot (a connection's resolved VM) can tell it is stale.
import type { RegisteredVm } from '../../identity/vm.ts';

export class VmRegistry {
  private snapshot: readonly RegisteredVm[] = [];
  private gen = 0;

  get vms(): readonly RegisteredVm[] {
    return this.snapshot;
  }

  /** Bumped on every replace(); never repeats within a daemon's life. */
  get generation(): number {
    return this.gen;
  }

  replace(vms: readonly RegisteredVm[]): void {
    this.snapshot = Object.freeze(vms.map((v) => ({ identity: v.identity, anchor: v.anchor })));
    this.gen++;
  }
}
