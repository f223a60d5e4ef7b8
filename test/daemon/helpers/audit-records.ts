// Audit records for store tests: record i has decisionId `${prefix}-${i}`, a time i seconds into
// 2026, VM a (odd i) or b (even i), policy p1 (or p2 when i is a multiple of 3), deny when i is a
// multiple of 4.
import type { NewAuditRecord } from '../../../runtime/store/audit-store.ts';

export function auditRecord(i: number, over: Partial<NewAuditRecord> = {}, prefix = 'd'): NewAuditRecord {
  return {
    decisionId: `${prefix}-${i}`,
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    requester: { pid: 100 + i, uid: 0, gid: 0 },
    vm: { uuid: i % 2 ? 'uuid-a' : 'uuid-b', name: i % 2 ? 'vm-a' : 'vm-b', id: 1, labels: [] },
    operation: 'set-memlock',
    targetPid: 200,
    bytes: '4096',
    policy: { name: i % 3 ? 'p1' : 'p2', revision: 1, sha256: 'x' },
    decision: i % 4 ? 'allow' : 'deny',
    reason: '',
    capabilityCalls: [],
    logs: [],
    fuelUsed: 10,
    durationUs: 5,
    totalUs: 9,
    ...over,
  };
}
