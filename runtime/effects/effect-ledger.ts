// The capability calls an evaluation worker makes for its current job, mirrored into shared
// memory before each one acts. A worker stopped by terminate() (its job past the deadline) or
// dead from a crash answers nothing: without this the main side could not know which effects
// it had, neither to list them in the decision's audit record nor to undo them. The main side
// reads the ledger only after the worker thread has exited (nothing writes it any more).
import type { MemlockValue, SetMemlockIntent } from './effect-intent.ts';

/** Calls per job the ledger holds (capability calls are capped at limits.maxCapabilityCalls,
 * default 16); a call that finds it full is refused before it acts. */
export const EFFECT_LEDGER_SLOTS = 256;

const HEADER_BYTES = 16;
const SLOT_BYTES = 56;
// Header: the job (i32), the slots used (i32), the address of the worker's mapping of the
// effects journal (u64), for the main side to unmap once the worker is gone.
const JOB = 0;
const COUNT = 1;
const MAPPING = 8;
// Slot fields, byte offsets.
const STATE = 0;
const OP = 4;
const PID = 8;
const ERRNO = 12;
const START_TIME = 16;
const BYTES = 24;
const BEFORE_SOFT = 32;
const BEFORE_HARD = 40;
const JOURNAL_SLOT = 48;

const State = { Intent: 1, Done: 2 } as const;
const Op = { SetMemlock: 1, QuerySome: 2, QueryNone: 3 } as const;

/** A call as the main side reads it back. */
export type LedgerCall =
  | {
      op: 'set-memlock';
      pid: number;
      startTime: number;
      bytes: bigint;
      before: MemlockValue;
      /** The effects journal's slot of its intent; -1: none. */
      journalSlot: number;
      /** Unknown when the worker died between mirroring the call and finishing it. */
      outcome: { done: true; errno: number } | { done: false };
    }
  | { op: 'query-vm-identity'; pid: number; result: 'some' | 'none' };

export function newEffectLedger(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + EFFECT_LEDGER_SLOTS * SLOT_BYTES);
}

class Views {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u64: BigUint64Array;
  constructor(shared: SharedArrayBuffer) {
    this.i32 = new Int32Array(shared);
    this.f64 = new Float64Array(shared);
    this.u64 = new BigUint64Array(shared);
  }
}

const slotAt = (slot: number, field: number): number => HEADER_BYTES + slot * SLOT_BYTES + field;

export class EffectLedgerFull extends Error {
  override readonly name = 'EffectLedgerFull';
}

/** The worker's side. */
export class EffectLedgerWriter {
  readonly #v: Views;

  constructor(shared: SharedArrayBuffer) {
    this.#v = new Views(shared);
  }

  /** Starts the record of `job`: what the ledger held before is forgotten. */
  begin(job: number): void {
    Atomics.store(this.#v.i32, COUNT, 0);
    Atomics.store(this.#v.i32, JOB, job);
  }

  /** Where the worker mapped the effects journal. */
  mapped(address: bigint): void {
    this.#v.u64[MAPPING >> 3] = address;
  }

  /** Mirrors a set-memlock about to act (its intent in `journalSlot`, -1: none); returns its entry, for done(). */
  intend(intent: SetMemlockIntent, journalSlot = -1): number {
    const v = this.#v;
    const slot = this.#take();
    v.i32[slotAt(slot, JOURNAL_SLOT) >> 2] = journalSlot;
    v.i32[slotAt(slot, OP) >> 2] = Op.SetMemlock;
    v.i32[slotAt(slot, PID) >> 2] = intent.pid;
    v.f64[slotAt(slot, START_TIME) >> 3] = intent.startTime;
    v.u64[slotAt(slot, BYTES) >> 3] = intent.bytes;
    v.u64[slotAt(slot, BEFORE_SOFT) >> 3] = intent.before.soft;
    v.u64[slotAt(slot, BEFORE_HARD) >> 3] = intent.before.hard;
    Atomics.store(v.i32, slotAt(slot, STATE) >> 2, State.Intent);
    Atomics.store(v.i32, COUNT, slot + 1);
    return slot;
  }

  /** The call finished: errno 0 if it succeeded. */
  done(slot: number, errno: number): void {
    this.#v.i32[slotAt(slot, ERRNO) >> 2] = errno;
    Atomics.store(this.#v.i32, slotAt(slot, STATE) >> 2, State.Done);
  }

  queried(pid: number, some: boolean): void {
    const v = this.#v;
    const slot = this.#take();
    v.i32[slotAt(slot, OP) >> 2] = some ? Op.QuerySome : Op.QueryNone;
    v.i32[slotAt(slot, PID) >> 2] = pid;
    Atomics.store(v.i32, slotAt(slot, STATE) >> 2, State.Done);
    Atomics.store(v.i32, COUNT, slot + 1);
  }

  #take(): number {
    const slot = Atomics.load(this.#v.i32, COUNT);
    if (slot >= EFFECT_LEDGER_SLOTS)
      throw new EffectLedgerFull(`the worker's effect ledger is full (${EFFECT_LEDGER_SLOTS} calls in one evaluation)`);
    return slot;
  }
}

/** The main side, after the worker thread exited: where it had mapped the effects journal (0n: nowhere). */
export function ledgerMapping(shared: SharedArrayBuffer): bigint {
  return new Views(shared).u64[MAPPING >> 3]!;
}

/** The main side, after the worker thread exited: the calls of `job`, in order (none if the ledger is another job's). */
export function readEffectLedger(shared: SharedArrayBuffer, job: number): LedgerCall[] {
  const v = new Views(shared);
  if (Atomics.load(v.i32, JOB) !== job) return [];
  const count = Math.min(Atomics.load(v.i32, COUNT), EFFECT_LEDGER_SLOTS);
  const calls: LedgerCall[] = [];
  for (let slot = 0; slot < count; slot++) {
    const state = Atomics.load(v.i32, slotAt(slot, STATE) >> 2);
    const op = v.i32[slotAt(slot, OP) >> 2];
    const pid = v.i32[slotAt(slot, PID) >> 2]!;
    if (op === Op.SetMemlock) {
      calls.push({
        op: 'set-memlock',
        pid,
        startTime: v.f64[slotAt(slot, START_TIME) >> 3]!,
        bytes: v.u64[slotAt(slot, BYTES) >> 3]!,
        before: { soft: v.u64[slotAt(slot, BEFORE_SOFT) >> 3]!, hard: v.u64[slotAt(slot, BEFORE_HARD) >> 3]! },
        journalSlot: v.i32[slotAt(slot, JOURNAL_SLOT) >> 2]!,
        outcome: state === State.Done ? { done: true, errno: v.i32[slotAt(slot, ERRNO) >> 2]! } : { done: false },
      });
    } else if (op === Op.QuerySome || op === Op.QueryNone) {
      calls.push({ op: 'query-vm-identity', pid, result: op === Op.QuerySome ? 'some' : 'none' });
    }
  }
  return calls;
}
