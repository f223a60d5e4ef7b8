// An effect a policy's capability call is about to have on the world, recorded before it
// happens (effect-journal.ts), with what it takes to undo it (the value before, and the target's
// start time, which together with its pid names one process forever) and what it takes to
// audit it if the daemon dies before the decision is recorded (the decision's context).
import type { Operation, VmIdentity } from '../contract/types.ts';
import { isJsonObject, parseJsonObject } from '../wire/json-object.ts';

/** A process's RLIMIT_MEMLOCK. */
export interface MemlockValue {
  soft: bigint;
  hard: bigint;
}

export interface SetMemlockIntent {
  op: 'set-memlock';
  pid: number;
  /** Of `pid`, in clock ticks since boot (/proc/<pid>/stat field 22). */
  startTime: number;
  bytes: bigint;
  before: MemlockValue;
}

/** What the audit record of a decision needs that the engine does not know: set by the request path. */
export interface DecisionContext {
  decisionId: string;
  /** ISO 8601: when the request arrived. */
  time: string;
  requester: { pid: number; uid: number; gid: number };
  vm: VmIdentity | null;
  operation: Operation;
  targetPid: number;
  /** The daemon's pid of the target, when the requester named it from a pid namespace below. */
  targetHostPid?: number;
  /** Wire form (formatBytes). */
  bytes: string;
  policy: { name: string; revision: number; sha256: string } | null;
}

/** One intent as the journal holds it. */
export interface RecordedIntent {
  context: DecisionContext;
  intent: SetMemlockIntent;
  /** ISO 8601: when the intent was written. */
  at: string;
}

/**
 * The context as JSON (on the decision path of every effect). The VM's labels are left out: an
 * intent must fit a slot of the journal, and a VM's registration keeps them. One JSON.stringify
 * of an object in the order below: the same text as a template of its ~20 pieces, and half the
 * garbage (825 bytes against 1,745, measured), as it writes one flat string.
 */
export function decisionContextJson(c: DecisionContext): string {
  return JSON.stringify({
    decisionId: c.decisionId,
    time: c.time,
    requester: { pid: c.requester.pid, uid: c.requester.uid, gid: c.requester.gid },
    vm: c.vm === null ? null : { uuid: c.vm.uuid, name: c.vm.name, id: c.vm.id, labels: [] },
    operation: c.operation,
    targetPid: c.targetPid,
    // Left out when undefined, as it was.
    targetHostPid: c.targetHostPid,
    bytes: c.bytes,
    policy: c.policy === null ? null : { name: c.policy.name, revision: c.policy.revision, sha256: c.policy.sha256 },
  });
}

/** The frame payload (built by hand: this is on the decision path); the context is JSON already.
 * `atMs`: epoch milliseconds. */
export function intentPayload(contextJson: string, intent: SetMemlockIntent, atMs: number): string {
  return `{"context":${contextJson},"intent":{"op":"set-memlock","pid":${intent.pid},"startTime":${intent.startTime},"bytes":"${intent.bytes}","before":{"soft":"${intent.before.soft}","hard":"${intent.before.hard}"}},"at":${atMs}}`;
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const u64 = (v: unknown): bigint | null =>
  typeof v === 'string' && /^[0-9]{1,20}$/.test(v) && BigInt(v) <= 0xffff_ffff_ffff_ffffn ? BigInt(v) : null;

/** A payload read back, or null when it is not one this file wrote. */
export function parseIntentPayload(text: string): RecordedIntent | null {
  const v = parseJsonObject(text);
  if (v === null) return null;
  const { context, intent, at } = v;
  if (!isInt(at) || !isJsonObject(context) || !isJsonObject(intent)) return null;
  const c = context as Partial<DecisionContext>;
  if (
    typeof c.decisionId !== 'string' ||
    typeof c.time !== 'string' ||
    typeof c.operation !== 'string' ||
    !isInt(c.targetPid) ||
    typeof c.bytes !== 'string'
  )
    return null;
  if (c.targetHostPid !== undefined && !isInt(c.targetHostPid)) return null;
  if (!isJsonObject(c.requester) || !isInt(c.requester.pid) || !isInt(c.requester.uid) || !isInt(c.requester.gid))
    return null;
  const i = intent as {
    op?: unknown;
    pid?: unknown;
    startTime?: unknown;
    bytes?: unknown;
    before?: { soft?: unknown; hard?: unknown };
  };
  const bytes = u64(i.bytes);
  const soft = u64(i.before?.soft);
  const hard = u64(i.before?.hard);
  if (
    i.op !== 'set-memlock' ||
    !isInt(i.pid) ||
    !isInt(i.startTime) ||
    bytes === null ||
    soft === null ||
    hard === null
  )
    return null;
  return {
    context: {
      decisionId: c.decisionId,
      time: c.time,
      requester: c.requester,
      vm: c.vm ?? null,
      operation: c.operation,
      targetPid: c.targetPid,
      ...(c.targetHostPid !== undefined ? { targetHostPid: c.targetHostPid } : {}),
      bytes: c.bytes,
      policy: c.policy ?? null,
    },
    intent: { op: 'set-memlock', pid: i.pid, startTime: i.startTime, bytes, before: { soft, hard } },
    at: new Date(at).toISOString(),
  };
}
