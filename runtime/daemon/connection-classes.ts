// Who holds a request-socket connection (connection-budget.ts), decided once at accept from the
// kernel-verified peer: a peer inside a registered VM counts against its VM, keeps its connection
// alive and may make room on a full socket; a peer in no VM counts against its uid and against
// the small budget all such peers share, and gets one answer per connection.
// Requests take their turn on the main thread (turn-queue.ts) as their VM's, and those of every
// peer in no VM as one payer's: however many uids they use, together they are one VM's worth.
//
// VM connections count against the VM, not the uid: in KubeVirt every VM's libvirt runs as the
// same uid (107), so a per-uid budget would cap all VMs together.
import type { ConnectionClass } from '../server/http/lean/connection-budget.ts';
import type { PeerCredentials } from '../server/deps.ts';
import type { RequesterVm } from '../server/request/requester-vm-cache.ts';
import type { DaemonConfig } from './config.ts';

type Budgets = Pick<DaemonConfig['request'], 'connectionsPerVm' | 'connectionsPerUid' | 'connectionsOutsideVms'>;

export const OUTSIDE_VMS_POOL = 'outside-vms';

export function connectionClassifier(
  budgets: Budgets,
  requesterVm: (peer: PeerCredentials) => RequesterVm,
): (peer: PeerCredentials) => ConnectionClass {
  return (peer) => {
    const r = requesterVm(peer);
    if (r.kind === 'vm') {
      const { uuid, name } = r.vm.identity;
      return {
        holder: `vm:${uuid}`,
        limit: budgets.connectionsPerVm,
        keepAlive: true,
        mayEvict: true,
        describe: `VM "${name}"`,
      };
    }
    return {
      holder: `uid:${peer.uid}`,
      limit: budgets.connectionsPerUid,
      pool: { name: OUTSIDE_VMS_POOL, limit: budgets.connectionsOutsideVms },
      payer: OUTSIDE_VMS_POOL,
      keepAlive: false,
      mayEvict: false,
      describe: `uid ${peer.uid} (in no registered VM)`,
    };
  };
}
