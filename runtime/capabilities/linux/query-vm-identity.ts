// query-vm-identity on Linux: the scope VM's identity, only when the pid is verifiably inside it.
// Same pidfd bracket as set-memlock, so a pid reused mid-check never answers for the old one.
import type { VmIdentity } from '../../contract/types.ts';
import type { RegisteredVm } from '../../identity/vm.ts';
import { isValidPid } from '../../os/pid.ts';
import { CheckedTargets } from './checked-targets.ts';
import type { EffectSink } from '../../effects/effect-sink.ts';

/** A copy for the guest's side: the fields it is lowered from, frozen all through, so that
 * nothing that reads it (lowering, the capability tape, a worker's replay) can change the VM's
 * registered identity. One per identity, made at its first query and shared by the later ones
 * (the registry replaces an identity, never changes it): a copy per query was ~0.2 KB of garbage. */
const guestCopies = new WeakMap<VmIdentity, VmIdentity>();

function guestCopy(id: VmIdentity): VmIdentity {
  let copy = guestCopies.get(id);
  if (copy === undefined) {
    const labels = new Array<[string, string]>(id.labels.length);
    for (let i = 0; i < labels.length; i++)
      labels[i] = Object.freeze([id.labels[i]![0], id.labels[i]![1]]) as [string, string];
    copy = Object.freeze({
      uuid: id.uuid,
      name: id.name,
      id: id.id,
      labels: Object.freeze(labels) as [string, string][],
    });
    guestCopies.set(id, copy);
  }
  return copy;
}

const none = (): null => null;

/** query-vm-identity through the targets this evaluation has already checked (see CheckedTargets). */
export function queryVmIdentityChecked(targets: CheckedTargets, pid: number, effects?: EffectSink): VmIdentity | null {
  const identity = isValidPid(pid)
    ? targets.use(pid, none, (target) => (target.verdict.member ? guestCopy(targets.scope.identity) : null))
    : null;
  effects?.queried(pid, identity !== null);
  return identity;
}

/** One query on its own: a fresh check, its pidfd closed before returning. */
export function queryVmIdentityInScope(scope: RegisteredVm, pid: number): VmIdentity | null {
  return queryVmIdentityChecked(new CheckedTargets(scope, 0), pid);
}
