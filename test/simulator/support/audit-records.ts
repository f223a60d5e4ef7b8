// Audit records as the daemon writes them (runtime/wire/audit.ts), for replay tests.
import type { VmIdentity } from '../../../runtime/contract/types.ts';
import type { AuditCapabilityCall, AuditRecord } from '../../../runtime/wire/index.ts';

export const GPU_VM: VmIdentity = {
  uuid: '5d2f7a10-0000-4000-8000-000000000001',
  name: 'gpu-vm',
  id: 10,
  labels: [
    ['vfio', 'true'],
    ['memory-bytes', '2147483648'],
  ],
};
export const PLAIN_VM: VmIdentity = {
  uuid: '5d2f7a10-0000-4000-8000-000000000002',
  name: 'plain-vm',
  id: 11,
  labels: [['memory-bytes', '8589934592']],
};

let seq = 0;

export function auditRecord(o: {
  vm: VmIdentity;
  targetPid: number;
  bytes: string;
  requesterPid?: number;
  decisionId?: string;
  granted?: boolean;
  refused?: boolean;
  outside?: boolean;
  decision?: 'allow' | 'deny';
  reason?: string;
}): AuditRecord {
  const calls: AuditCapabilityCall[] = [
    {
      op: 'query-vm-identity',
      pid: o.targetPid,
      result: o.outside ? 'none' : 'some',
      ...(o.outside ? {} : { vmUuid: o.vm.uuid }),
    },
  ];
  if (o.granted) calls.push({ op: 'set-memlock', pid: o.targetPid, bytes: o.bytes, result: 'ok' });
  if (o.refused) calls.push({ op: 'set-memlock', pid: o.targetPid, bytes: o.bytes, result: 'not-permitted' });
  seq += 1;
  return {
    schemaVersion: 1,
    seq,
    decisionId: o.decisionId ?? `d-${seq}`,
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    requester: { pid: o.requesterPid ?? 50, uid: 107, gid: 107 },
    vm: o.vm,
    operation: 'set-memlock',
    targetPid: o.targetPid,
    bytes: o.bytes,
    policy: { name: 'vfio-only', revision: 1, sha256: 'f'.repeat(64) },
    decision: o.decision ?? (o.granted ? 'allow' : 'deny'),
    reason: o.reason ?? (o.granted ? '' : o.refused ? 'set-memlock-failed: not-permitted' : ''),
    capabilityCalls: calls,
    logs: [],
    fuelUsed: 1000,
    durationUs: 50,
    totalUs: 80,
  };
}

/**
 * What vfio-only decided for three requests: unlimited allowed for the GPU VM, 1 GiB denied for
 * the plain VM, a target outside the VM denied. memlock-cap changes the first two, not the third.
 */
export function vfioOnlyHistory(): AuditRecord[] {
  return [
    auditRecord({
      decisionId: 'd-unlimited',
      vm: GPU_VM,
      targetPid: 51,
      bytes: 'unlimited',
      granted: true,
      decision: 'allow',
    }),
    auditRecord({
      decisionId: 'd-plain',
      vm: PLAIN_VM,
      requesterPid: 60,
      targetPid: 61,
      bytes: '1073741824',
      decision: 'deny',
      reason: 'vm-not-vfio',
    }),
    auditRecord({
      decisionId: 'd-outside',
      vm: GPU_VM,
      targetPid: 900,
      bytes: '1',
      outside: true,
      decision: 'deny',
      reason: 'target-not-in-requester-vm',
    }),
  ];
}
