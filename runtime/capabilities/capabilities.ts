// The one interface through which a policy's host imports reach the outside world.
// The real Linux implementation and the simulator's implementation both satisfy it, and the
// engine never knows which one it is talking to.
import type { CapabilityError, VmIdentity } from '../contract/types.ts';

/**
 * What a set-memlock that reached prlimit changed: the limit read just before it, and the
 * target's start time (pid + start time name one process forever), to undo it safely.
 */
export interface MemlockEffect {
  before: { soft: bigint; hard: bigint };
  startTime: number;
  /** The effects journal's slot holding its intent, cleared once its decision is recorded. */
  journalSlot?: number;
}

/** `effect`: present when the call reached the kernel's prlimit (whatever it answered). */
export type SetMemlockResult =
  | { ok: true; effect?: MemlockEffect }
  | { ok: false; error: CapabilityError; detail?: string; effect?: MemlockEffect };

/**
 * Capabilities for ONE evaluation, already scoped to the requester's own VM.
 * Synchronous because wasm imports are synchronous; implementations must be bounded in time.
 */
export interface Capabilities {
  /** Sets soft and hard RLIMIT_MEMLOCK; `out-of-scope` for any pid outside the requester's VM. */
  setMemlock(pid: number, bytes: bigint): SetMemlockResult;
  /** The requester's VM identity if `pid` is verifiably inside it; null otherwise. Throws on an
   * unexpected failure (the engine denies host-error with the detail), never answers null for one. */
  queryVmIdentity(pid: number): VmIdentity | null;
  /**
   * Called once when the evaluation these capabilities served has ended (whatever its outcome):
   * frees what they kept for it (e.g. pidfds memoised across calls). Idempotent.
   */
  release?(): void;
}
