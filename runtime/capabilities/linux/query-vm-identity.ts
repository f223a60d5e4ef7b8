// query-vm-identity on Linux: the scope VM's identity, only when the pid is verifiably inside it.
// Same pidfd bracket as set-memlock, so a pid reused mid-check never answers for the old one.
import type { VmIdentity } from '../../contract/types.ts';
import type { RegisteredVm } from '../../identity/vm.ts';
import { isValidPid } from '../../os/pid.ts';
import { CheckedTargets } from './checked-targets.ts';
import type { EffectSink } from '../../effects/effect-sink.ts';

/** A copy for the guest's side: the fields it is lowered from, built without a spread or an
 * iterator per label (every speculative run that asks makes one). */
function copyIdentity(id: VmIdentity): VmIdentity {
  const labels = new Array<[string, string]>(id.labels.length);
  for (let i = 0; i < labels.length; i++) labels[i] = [id.labels[i]![0], id.labels[i]![1]];
  return { uuid: id.uuid, name: id.name, id: id.id, labels };
}

const none = (): null => null;

/** query-vm-identity through the targets this evaluation has already checked (see CheckedTargets). */
export function queryVmIdentityChecked(targets: CheckedTargets, pid: number, effects?: EffectSink): VmIdentity | null {
  const identity = isValidPid(pid)
    ? targets.use(pid, none, (target) => (target.verdict.member ? copyIdentity(targets.scope.identity) : null))
    : null;
  effects?.queried(pid, identity !== null);
  return identity;
}

/** One query on its own: a fresh check, its pidfd closed before returning. */
export function queryVmIdentityInScope(scope: RegisteredVm, pid: number): VmIdentity | null {
  return queryVmIdentityChecked(new CheckedTargets(scope, 0), pid);
}
