// At start-up: what a kill -9 left between an effect and its decision. An intent in the effects
// journal whose decision has no audit record is a decision lost with its effects in the world
// (the daemon answers only after the record is committed, so the requester never got an allow).
// Each such decision gets a record: decision deny, reason decision-lost, every effect its intents
// name with the limit as it is at the restart, and, failing closed like any decision other than
// allow, each effect undone (newest first, on the same process only) with how that went.
import type { MemlockEffect } from '../capabilities/capabilities.ts';
import type { CapabilityCall } from '../engine/outcome.ts';
import type { NewAuditRecord } from '../store/audit-store.ts';
import { formatBytes, type AuditCapabilityCall } from '../wire/index.ts';
import type { RecordedIntent } from './effect-intent.ts';
import { undoEffects, type UndoOne } from './undo-effects.ts';
import { auditSetMemlockCall } from './audit-call.ts';

export interface RecoveryDeps {
  /** True when the audit log has a record of this decision. */
  hasRecord(decisionId: string): boolean;
  /** The memlock limit of `pid` now, if it is still the process that started at `startTime`. */
  limitNow(pid: number, startTime: number): { soft: bigint; hard: bigint } | null;
  undoOne: UndoOne;
}

/** The records of the lost decisions among `intents` (none when every decision was recorded). */
export function recoverLostDecisions(intents: readonly RecordedIntent[], deps: RecoveryDeps): NewAuditRecord[] {
  const lost = new Map<string, RecordedIntent[]>();
  for (const i of intents) {
    const id = i.context.decisionId;
    if (!lost.has(id) && deps.hasRecord(id)) continue;
    const group = lost.get(id) ?? [];
    group.push(i);
    lost.set(id, group);
  }
  const records: NewAuditRecord[] = [];
  for (const group of lost.values()) records.push(recordOf(group, deps));
  return records;
}

function recordOf(group: readonly RecordedIntent[], deps: RecoveryDeps): NewAuditRecord {
  const c = group[0]!.context;
  const now = group.map((g) => deps.limitNow(g.intent.pid, g.intent.startTime));
  // Whether prlimit acted after its intent was written is not recorded: the limit says.
  const calls: CapabilityCall[] = group.map((g, k) => {
    const { pid, bytes, before, startTime } = g.intent;
    const effect: MemlockEffect = { before, startTime };
    const n = now[k];
    const acted = n !== null && n !== undefined && n.soft === bytes && n.hard === bytes;
    return acted
      ? { op: 'set-memlock', pid, bytes, result: 'ok', effect }
      : {
          op: 'set-memlock',
          pid,
          bytes,
          result: 'internal',
          detail: 'the daemon stopped after recording this call and before its decision: prlimit may not have acted',
          effect,
          unfinished: true,
        };
  });
  const undone = undoEffects(calls, deps.undoOne);
  const audit = undone.map((call, k): AuditCapabilityCall => {
    if (call.op !== 'set-memlock') throw new Error('recovery only rebuilds set-memlock calls');
    const n = now[k];
    return {
      ...auditSetMemlockCall(call),
      limitAtRecovery: n === null || n === undefined ? null : { soft: formatBytes(n.soft), hard: formatBytes(n.hard) },
    };
  });
  const n = group.length;
  return {
    decisionId: c.decisionId,
    time: c.time,
    requester: c.requester,
    vm: c.vm,
    operation: c.operation,
    targetPid: c.targetPid,
    ...(c.targetHostPid !== undefined ? { targetHostPid: c.targetHostPid } : {}),
    bytes: c.bytes,
    policy: c.policy,
    decision: 'deny',
    reason: 'decision-lost',
    errorKind: 'decision-lost',
    errorDetail: `the daemon stopped after ${n} effect${n === 1 ? '' : 's'} of this decision (recorded at ${group[0]!.at}) and before its decision was recorded; found at the restart, undone where possible (see each call)`,
    capabilityCalls: audit,
    logs: [],
    fuelUsed: 0,
    durationUs: 0,
    totalUs: 0,
  };
}
