// query-vm-identity on Linux: the scope VM's identity, only when the pid is verifiably inside it.
// Same pidfd bracket as set-memlock, so a pid reused mid-check never answers for the old one.
import type { VmIdentity } from '../../contract/types.ts';
import type { RegisteredVm } from '../../identity/vm.ts';
import { isMember } from '../../identity/membership.ts';
import { isValidPid } from '../../identity/pid.ts';
import { closeFd, openPidfd, pidfdIsAlive } from './pidfd.ts';

const copyIdentity = (id: VmIdentity): VmIdentity => ({ ...id, labels: id.labels.map(([k, v]) => [k, v]) });

export function queryVmIdentityInScope(scope: RegisteredVm, pid: number): VmIdentity | null {
  if (!isValidPid(pid)) return null;
  const opened = openPidfd(pid);
  if (!opened.ok) return null;
  try {
    const member = isMember(pid, scope);
    return member && pidfdIsAlive(opened.pidfd) ? copyIdentity(scope.identity) : null;
  } finally {
    closeFd(opened.pidfd);
  }
}
