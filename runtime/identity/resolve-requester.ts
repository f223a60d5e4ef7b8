// Which registered VM a (kernel-verified) requester pid belongs to.
import type { RegisteredVm } from './vm.ts';
import { Lineage } from './lineage.ts';
import { membershipOf } from './membership.ts';

export type RequesterResolution =
  | { kind: 'vm'; vm: RegisteredVm }
  | { kind: 'unknown' }
  /** Inside more than one registered VM: a registry mistake; refused rather than guessed. */
  | { kind: 'ambiguous'; uuids: string[] };

export function resolveRequester(pid: number, vms: readonly RegisteredVm[]): RequesterResolution {
  // One lazily-read lineage shared by every VM: /proc is walked once however many VMs there are.
  const lineage = Lineage.of(pid);
  if (lineage === null) return { kind: 'unknown' };
  const matches = vms.filter((vm) => membershipOf(lineage, vm).member);
  const [only] = matches;
  if (only === undefined) return { kind: 'unknown' };
  if (matches.length > 1) return { kind: 'ambiguous', uuids: matches.map((vm) => vm.identity.uuid) };
  return { kind: 'vm', vm: only };
}

/** The requester's VM, or null (the daemon then denies `unknown-requester`). Ambiguity is null too. */
export function resolveRequesterVm(pid: number, vms: readonly RegisteredVm[]): RegisteredVm | null {
  const r = resolveRequester(pid, vms);
  return r.kind === 'vm' ? r.vm : null;
}
