// An effect a policy's capability call is about to have on the world, recorded before it
// happens (effect-journal.ts), with what it takes to undo it (the value before, and the target's
// start time, which together with its pid names one process forever) and what it takes to
// audit it if the daemon dies before the decision is recorded (the decision's context).
import type { Operation, VmIdentity } from '../contract/types.ts';
import { decimalDigits, writeDecimal } from '../wire/decimal-bytes.ts';
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
    vm: c.vm === null ? null : vmContext(c.vm),
    operation: c.operation,
    targetPid: c.targetPid,
    // Left out when undefined, as it was.
    targetHostPid: c.targetHostPid,
    bytes: c.bytes,
    policy: c.policy === null ? null : policyContext(c.policy),
  });
}

const vmContext = (vm: VmIdentity): object => ({ uuid: vm.uuid, name: vm.name, id: vm.id, labels: [] });
const policyContext = (p: NonNullable<DecisionContext['policy']>): object => ({
  name: p.name,
  revision: p.revision,
  sha256: p.sha256,
});

/** The frame payload (built by hand: this is on the decision path); the context is JSON already.
 * `atMs`: epoch milliseconds. */
export function intentPayload(contextJson: string, intent: SetMemlockIntent, atMs: number): string {
  return `${CONTEXT_OPEN}${contextJson}${intentTail(intent, atMs)}`;
}

const CONTEXT_OPEN = '{"context":';

/** What follows the context in the payload: ASCII only (numbers and fixed text). */
function intentTail(intent: SetMemlockIntent, atMs: number): string {
  return `,"intent":{"op":"set-memlock","pid":${intent.pid},"startTime":${intent.startTime},"bytes":"${intent.bytes}","before":{"soft":"${intent.before.soft}","hard":"${intent.before.hard}"}},"at":${atMs}}`;
}

/** The decision's context as the intent carries it: its JSON (decisionContextJson), or the
 * context itself, written as that JSON without making it a string first. */
export type IntentContext = string | DecisionContext;

/**
 * Writes intentPayload's UTF-8 bytes into `into` from `start`, piece by piece: the payload as one
 * string would be made of ~30 pieces, and encoding copies such a string flat first (as it does
 * JSON.stringify's result, which is built in pieces too): ~2 KB of garbage per effect, against a
 * few short strings here. Returns the bytes written, or -1 when they do not fit before `end`.
 */
export function writeIntentPayload(
  into: Buffer,
  start: number,
  end: number,
  context: IntentContext,
  intent: SetMemlockIntent,
  atMs: number,
): number {
  const w = new SlotWriter(into, start, end);
  w.ascii(CONTEXT_OPEN);
  if (typeof context === 'string') w.utf8(context);
  else writeDecisionContext(w, context);
  // intentTail, piece by piece.
  w.ascii(',"intent":{"op":"set-memlock","pid":');
  w.number(intent.pid);
  w.ascii(',"startTime":');
  w.number(intent.startTime);
  w.ascii(',"bytes":"');
  w.ascii(String(intent.bytes));
  w.ascii('","before":{"soft":"');
  w.ascii(String(intent.before.soft));
  w.ascii('","hard":"');
  w.ascii(String(intent.before.hard));
  w.ascii('"}},"at":');
  w.number(atMs);
  w.ascii('}');
  return w.overflow ? -1 : w.at - start;
}

/**
 * Writes into a buffer up to `end`; once something does not fit, nothing more is written.
 * ASCII is stored a character at a time in JS: a Buffer write() is a C++ call of ~0.1-0.2 µs
 * whatever the length, and an intent is ~40 pieces (3.4 µs an intent through write(), measured).
 */
class SlotWriter {
  overflow = false;
  constructor(
    private readonly into: Buffer,
    public at: number,
    private readonly end: number,
  ) {}

  /** A string of ASCII characters only. */
  ascii(s: string): void {
    const n = s.length;
    if (this.overflow || this.at + n > this.end) return void (this.overflow = true);
    const into = this.into;
    let at = this.at;
    for (let i = 0; i < n; i++) into[at++] = s.charCodeAt(i);
    this.at = at;
  }

  utf8(s: string): void {
    // Each character takes at most 3 bytes (a surrogate pair: 4 for 2); write() never splits one.
    const room = this.end - this.at;
    if (this.overflow || (s.length * 3 > room && Buffer.byteLength(s, 'utf8') > room))
      return void (this.overflow = true);
    this.at += this.into.write(s, this.at, 'utf8');
  }

  /** Bytes made before (UTF-8). */
  bytes(b: Uint8Array): void {
    if (this.overflow || this.at + b.length > this.end) return void (this.overflow = true);
    this.into.set(b, this.at);
    this.at += b.length;
  }

  /** A string as JSON.stringify writes it. */
  jsonString(s: string): void {
    const n = s.length;
    if (this.overflow || this.at + n + 2 > this.end) {
      // Too long as it is; escaped it would be longer still, unless it is not (utf8 decides).
      if (!this.overflow) this.utf8(JSON.stringify(s));
      return;
    }
    const into = this.into;
    let at = this.at;
    into[at++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // Not printable ASCII, or one JSON escapes: JSON.stringify writes it (from where it started).
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return this.utf8(JSON.stringify(s));
      into[at++] = c;
    }
    into[at++] = 0x22;
    this.at = at;
  }

  /** As String(n) writes it (a safe integer digit by digit, without the string). */
  number(n: number): void {
    if (!Number.isSafeInteger(n) || n <= 0) return this.ascii(String(n));
    const digits = decimalDigits(n);
    if (this.overflow || this.at + digits > this.end) return void (this.overflow = true);
    this.at = writeDecimal(this.into, this.at, n, digits);
  }
}

/** JSON of the parts of a context that stay the same across decisions, kept per object (as
 * UTF-8 bytes: copied in, not encoded again). The request path hands the same objects to every
 * decision of a VM and binding; the objects are not changed after (a registration or a binding
 * that changes is a new object). */
const vmJson = new WeakMap<VmIdentity, Uint8Array>();
const policyJson = new WeakMap<NonNullable<DecisionContext['policy']>, Uint8Array>();
const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** decisionContextJson(c), written. */
function writeDecisionContext(w: SlotWriter, c: DecisionContext): void {
  w.ascii('{"decisionId":');
  w.jsonString(c.decisionId);
  w.ascii(',"time":');
  w.jsonString(c.time);
  w.ascii(',"requester":{"pid":');
  w.number(c.requester.pid);
  w.ascii(',"uid":');
  w.number(c.requester.uid);
  w.ascii(',"gid":');
  w.number(c.requester.gid);
  w.ascii('},"vm":');
  const vm = c.vm;
  if (vm === null) w.ascii('null');
  else {
    let json = vmJson.get(vm);
    if (json === undefined) vmJson.set(vm, (json = utf8(JSON.stringify(vmContext(vm)))));
    w.bytes(json);
  }
  w.ascii(',"operation":');
  w.jsonString(c.operation);
  w.ascii(',"targetPid":');
  w.number(c.targetPid);
  if (c.targetHostPid !== undefined) {
    w.ascii(',"targetHostPid":');
    w.number(c.targetHostPid);
  }
  w.ascii(',"bytes":');
  w.jsonString(c.bytes);
  w.ascii(',"policy":');
  const policy = c.policy;
  if (policy === null) w.ascii('null');
  else {
    let json = policyJson.get(policy);
    if (json === undefined) policyJson.set(policy, (json = utf8(JSON.stringify(policyContext(policy)))));
    w.bytes(json);
  }
  w.ascii('}');
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
