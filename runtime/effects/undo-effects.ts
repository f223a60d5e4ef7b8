// Effects follow the decision: when it is not allow, every set-memlock that acted during it is
// undone, newest first, back to the limits read before; each call then says how that went.
import type { MemlockEffect } from '../capabilities/capabilities.ts';
import type { CapabilityCall } from '../engine/outcome.ts';

/** Undoes one effect (capabilities/linux/undo-memlock.ts); returns the audit's status text. */
export type UndoOne = (u: { pid: number; expected: { soft: bigint; hard: bigint }; effect: MemlockEffect }) => string;

/** Calls whose effect may be in the world: prlimit acted (or may have: the worker stopped mid-call). */
export function hasEffect(
  c: CapabilityCall,
): c is Extract<CapabilityCall, { op: 'set-memlock' }> & { effect: MemlockEffect } {
  return c.op === 'set-memlock' && c.effect !== undefined && (c.result === 'ok' || c.unfinished === true);
}

/** The calls, with `undo` set on each one that had an effect (undone newest first). */
export function undoEffects(calls: readonly CapabilityCall[], undoOne: UndoOne): CapabilityCall[] {
  const out = [...calls];
  // What each pid's limit should be now: what its newest remaining effect left.
  const expected = new Map<number, { soft: bigint; hard: bigint }>();
  for (let k = out.length - 1; k >= 0; k--) {
    const c = out[k]!;
    if (!hasEffect(c)) continue;
    const now = expected.get(c.pid) ?? { soft: c.bytes, hard: c.bytes };
    let status: string;
    try {
      status = undoOne({ pid: c.pid, expected: now, effect: c.effect });
    } catch (err) {
      status = `undo failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    expected.set(c.pid, status === 'undone' ? c.effect.before : now);
    out[k] = { ...c, undo: status };
  }
  return out;
}
