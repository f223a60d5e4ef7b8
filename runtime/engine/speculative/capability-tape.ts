// A record of the capability calls one evaluation made, with their results, and the two
// wrappers that use it: one records a run, the other lets a later run of the same policy on the
// same request replay that prefix instead of acting again. A policy is deterministic (fresh
// instance, no clock, no randomness; every input is the request and the host's answers), so a
// second run makes the same calls in the same order and, given the same answers, takes the same
// path: the effects of the first run (a prlimit already done) happen exactly once.
import type { VmIdentity } from '../../contract/types.ts';
import type { Capabilities, SetMemlockResult } from '../../capabilities/capabilities.ts';
import type { CapabilityCall } from '../outcome.ts';

export type TapeEntry =
  | { op: 'set-memlock'; pid: number; bytes: bigint; result: SetMemlockResult }
  | { op: 'query-vm-identity'; pid: number; result: VmIdentity | null };

/** Thrown into the guest (as a host-error) when a replayed run asks for something else. */
export class ReplayDiverged extends Error {
  override readonly name = 'ReplayDiverged';
}

const copyIdentity = (id: VmIdentity | null): VmIdentity | null =>
  id === null ? null : { ...id, labels: id.labels.map(([k, v]) => [k, v]) };
const copyResult = (r: SetMemlockResult): SetMemlockResult => ({ ...r });

/** `inner`, with every call and its result appended to `tape`. */
export function recordingCapabilities(inner: Capabilities, tape: TapeEntry[]): Capabilities {
  return new Recording(inner, tape);
}

/**
 * One object per speculative run, its methods on the prototype. The tape keeps the very results
 * the guest's side is given: the host imports only read them (to lower them and to list the
 * call), nothing changes them afterwards, and a worker gets the tape as a structured clone. (A
 * copy of each cost ~0.7 KB per decision; the replaying side still hands out copies.)
 */
class Recording implements Capabilities {
  constructor(
    private readonly inner: Capabilities,
    private readonly tape: TapeEntry[],
  ) {}

  setMemlock(pid: number, bytes: bigint): SetMemlockResult {
    const result = this.inner.setMemlock(pid, bytes);
    this.tape.push({ op: 'set-memlock', pid, bytes, result });
    return result;
  }

  queryVmIdentity(pid: number): VmIdentity | null {
    const result = this.inner.queryVmIdentity(pid);
    this.tape.push({ op: 'query-vm-identity', pid, result });
    return result;
  }

  release(): void {
    this.inner.release?.();
  }
}

export interface ReplayingCapabilities extends Capabilities {
  /** Entries of the tape not asked for (yet). A finished run with any left diverged. */
  readonly unreplayed: number;
}

/**
 * Answers the first `tape.length` calls from the tape, after checking that each is the very call
 * recorded (same operation and arguments); later calls go to `inner`. A call that differs is
 * refused with ReplayDiverged: the run fails closed and nothing is done twice.
 */
export function replayingCapabilities(inner: Capabilities, tape: readonly TapeEntry[]): ReplayingCapabilities {
  let next = 0;
  const expect = (op: TapeEntry['op'], pid: number, bytes?: bigint): TapeEntry | undefined => {
    if (next >= tape.length) return undefined;
    const entry = tape[next]!;
    const same = entry.op === op && entry.pid === pid && (entry.op !== 'set-memlock' || entry.bytes === bytes);
    if (!same) {
      throw new ReplayDiverged(
        `replay diverged at capability call ${next + 1}: recorded ${describe(entry)}, the repeated run asked ${op}(${pid}${bytes === undefined ? '' : `, ${bytes}`})`,
      );
    }
    next++;
    return entry;
  };
  return {
    setMemlock(pid, bytes) {
      const entry = expect('set-memlock', pid, bytes);
      return entry?.op === 'set-memlock' ? copyResult(entry.result) : inner.setMemlock(pid, bytes);
    },
    queryVmIdentity(pid) {
      const entry = expect('query-vm-identity', pid);
      return entry?.op === 'query-vm-identity' ? copyIdentity(entry.result) : inner.queryVmIdentity(pid);
    },
    release: () => inner.release?.(),
    get unreplayed() {
      return tape.length - next;
    },
  };
}

function describe(e: TapeEntry): string {
  return e.op === 'set-memlock' ? `set-memlock(${e.pid}, ${e.bytes})` : `query-vm-identity(${e.pid})`;
}

/** The tape as the calls of an outcome: what reached the capabilities, with their effects. */
export function tapeCalls(tape: readonly TapeEntry[]): CapabilityCall[] {
  return tape.map((e): CapabilityCall => {
    if (e.op === 'query-vm-identity')
      return e.result === null
        ? { op: e.op, pid: e.pid, result: 'none' }
        : { op: e.op, pid: e.pid, result: 'some', vmUuid: e.result.uuid };
    const r = e.result;
    const effect = r.effect !== undefined ? { effect: r.effect } : {};
    return r.ok
      ? { op: e.op, pid: e.pid, bytes: e.bytes, result: 'ok', ...effect }
      : {
          op: e.op,
          pid: e.pid,
          bytes: e.bytes,
          result: r.error,
          ...(r.detail !== undefined ? { detail: r.detail } : {}),
          ...effect,
        };
  });
}
