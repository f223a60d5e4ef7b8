// Outcome <-> bytes, for the answer mailbox: a fixed schema is several times cheaper than a
// structured clone through a MessagePort. Anything outside the schema (an unknown enum value,
// a non-number where a number belongs) throws MailboxOverflow, and the answer takes the port.
import { CAPABILITY_ERRORS, LOG_LEVELS, type CapabilityError } from '../../contract/types.ts';
import { ERROR_KINDS, type CapabilityCall, type LogLine, type Outcome } from '../outcome.ts';
import { MailboxOverflow, type ByteReader, type ByteWriter } from './byte-codec.ts';

const ABSENT = 0xff;
const OP_SET_MEMLOCK = 0;
const OP_QUERY = 1;
const SET_MEMLOCK_RESULTS = ['ok', ...CAPABILITY_ERRORS] as const;
const QUERY_RESULTS = ['some', 'none'] as const;
const DECISIONS = ['allow', 'deny'] as const;
/** Flags of a set-memlock call. */
const EFFECT = 1;
const UNFINISHED = 2;

function u64(v: unknown): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new MailboxOverflow();
  return v;
}

function index<T>(list: readonly T[], value: T): number {
  const i = list.indexOf(value);
  if (i < 0) throw new MailboxOverflow();
  return i;
}

function number(v: unknown): number {
  if (typeof v !== 'number') throw new MailboxOverflow();
  return v;
}

function optionalString(w: ByteWriter, s: string | undefined): void {
  if (s === undefined) {
    w.u8(0);
    return;
  }
  if (typeof s !== 'string') throw new MailboxOverflow();
  w.u8(1);
  w.string(s);
}

function readOptionalString(r: ByteReader): string | undefined {
  return r.u8() === 1 ? r.string() : undefined;
}

export function writeOutcome(w: ByteWriter, o: Outcome): void {
  w.u8(index(DECISIONS, o.decision));
  w.string(o.reason);
  w.u8(o.errorKind === undefined ? ABSENT : index(ERROR_KINDS, o.errorKind));
  optionalString(w, o.errorDetail);
  w.f64(number(o.fuelUsed));
  w.f64(number(o.durationUs));
  w.f64(o.droppedLogLines === undefined ? -1 : number(o.droppedLogLines));
  w.f64(o.droppedMemoryBytes === undefined ? -1 : number(o.droppedMemoryBytes));
  w.u32(o.capabilityCalls.length);
  for (const c of o.capabilityCalls) {
    if (c.op === 'set-memlock') {
      if (typeof c.bytes !== 'bigint' || c.bytes < 0n || c.bytes > 0xffff_ffff_ffff_ffffn) throw new MailboxOverflow();
      w.u8(OP_SET_MEMLOCK);
      w.f64(number(c.pid));
      w.u64(c.bytes);
      w.u8(index(SET_MEMLOCK_RESULTS, c.result));
      optionalString(w, c.detail);
      const e = c.effect;
      w.u8((e !== undefined ? EFFECT : 0) | (c.unfinished === true ? UNFINISHED : 0));
      if (e !== undefined) {
        w.u64(u64(e.before.soft));
        w.u64(u64(e.before.hard));
        w.f64(number(e.startTime));
        w.f64(e.journalSlot === undefined ? -1 : number(e.journalSlot));
      }
      optionalString(w, c.undo);
    } else if (c.op === 'query-vm-identity') {
      w.u8(OP_QUERY);
      w.f64(number(c.pid));
      w.u8(index(QUERY_RESULTS, c.result));
      optionalString(w, c.vmUuid);
    } else {
      throw new MailboxOverflow();
    }
  }
  w.u32(o.logs.length);
  for (const l of o.logs) {
    w.u8(index(LOG_LEVELS, l.level));
    w.string(l.message);
  }
}

/** The exact Outcome writeOutcome was given: optional fields absent, not undefined. */
export function readOutcome(r: ByteReader): Outcome {
  const decision = DECISIONS[r.u8()]!;
  const reason = r.string();
  const kind = r.u8();
  const errorDetail = readOptionalString(r);
  const fuelUsed = r.f64();
  const durationUs = r.f64();
  const dropped = r.f64();
  const droppedMemoryBytes = r.f64();
  const capabilityCalls: CapabilityCall[] = [];
  for (let n = r.u32(); n > 0; n--) {
    if (r.u8() === OP_SET_MEMLOCK) {
      const pid = r.f64();
      const bytes = r.u64();
      const result = SET_MEMLOCK_RESULTS[r.u8()]!;
      const detail = readOptionalString(r);
      const flags = r.u8();
      let effect = {};
      if ((flags & EFFECT) !== 0) {
        const before = { soft: r.u64(), hard: r.u64() };
        const startTime = r.f64();
        const journalSlot = r.f64();
        effect = { effect: { before, startTime, ...(journalSlot >= 0 ? { journalSlot } : {}) } };
      }
      const undo = readOptionalString(r);
      const rest = {
        ...(detail !== undefined ? { detail } : {}),
        ...effect,
        ...((flags & UNFINISHED) !== 0 ? { unfinished: true as const } : {}),
        ...(undo !== undefined ? { undo } : {}),
      };
      capabilityCalls.push(
        result === 'ok'
          ? { op: 'set-memlock', pid, bytes, result, ...rest }
          : { op: 'set-memlock', pid, bytes, result: result as CapabilityError, ...rest },
      );
    } else {
      const pid = r.f64();
      const result = QUERY_RESULTS[r.u8()]!;
      const vmUuid = readOptionalString(r);
      capabilityCalls.push({ op: 'query-vm-identity', pid, result, ...(vmUuid !== undefined ? { vmUuid } : {}) });
    }
  }
  const logs: LogLine[] = [];
  for (let n = r.u32(); n > 0; n--) logs.push({ level: LOG_LEVELS[r.u8()]!, message: r.string() });
  return {
    decision,
    reason,
    ...(kind !== ABSENT ? { errorKind: ERROR_KINDS[kind]! } : {}),
    ...(errorDetail !== undefined ? { errorDetail } : {}),
    fuelUsed,
    durationUs,
    capabilityCalls,
    logs,
    ...(dropped >= 0 ? { droppedLogLines: dropped } : {}),
    ...(droppedMemoryBytes >= 0 ? { droppedMemoryBytes } : {}),
  };
}
