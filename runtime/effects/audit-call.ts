// A capability call as its decision's audit record carries it (wire form): byte counts as
// decimal strings, the limit a set-memlock found, how undoing it went. The request path and the
// recovery of decisions a crash lost (recover.ts) both write calls this way.
import type { CapabilityCall } from '../engine/outcome.ts';
import { formatBytes, type AuditCapabilityCall } from '../wire/index.ts';

type SetMemlockCall = Extract<CapabilityCall, { op: 'set-memlock' }>;
type AuditSetMemlockCall = Extract<AuditCapabilityCall, { op: 'set-memlock' }>;

// Optional fields are written undefined, not left out: one literal per call, no spread of
// one-field objects (every decision's calls pass here). JSON.stringify leaves undefined out, so
// the record's JSON is the same.

export function auditCall(c: CapabilityCall): AuditCapabilityCall {
  if (c.op === 'set-memlock') return auditSetMemlockCall(c);
  return { op: c.op, pid: c.pid, result: c.result, vmUuid: c.vmUuid };
}

export function auditSetMemlockCall(c: SetMemlockCall): AuditSetMemlockCall {
  return {
    op: c.op,
    pid: c.pid,
    bytes: formatBytes(c.bytes),
    result: c.result,
    detail: c.detail,
    before:
      c.effect !== undefined
        ? { soft: formatBytes(c.effect.before.soft), hard: formatBytes(c.effect.before.hard) }
        : undefined,
    undo: c.undo,
  };
}
