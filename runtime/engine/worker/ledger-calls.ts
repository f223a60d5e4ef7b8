// The calls of a job whose worker stopped before answering (its deadline passed, or it died),
// from what the worker mirrored before each call acted (effects/effect-ledger.ts): the replayed
// calls of the speculative run first (they reached the kernel on the main thread), then the
// worker's own. Every call that reached the kernel is in the decision's record.
import { capabilityErrorForErrno } from '../../capabilities/capability-error.ts';
import { errnoName } from '../../os/errno.ts';
import { readEffectLedger } from '../../effects/effect-ledger.ts';
import type { CapabilityCall } from '../outcome.ts';
import { tapeCalls, type TapeEntry } from '../speculative/capability-tape.ts';

export function stoppedJobCalls(
  ledger: SharedArrayBuffer,
  job: number,
  replay: readonly TapeEntry[] | undefined,
): CapabilityCall[] {
  const own = readEffectLedger(ledger, job).map((c): CapabilityCall => {
    if (c.op === 'query-vm-identity') return c;
    const base = {
      op: c.op,
      pid: c.pid,
      bytes: c.bytes,
      effect: {
        before: c.before,
        startTime: c.startTime,
        ...(c.journalSlot >= 0 ? { journalSlot: c.journalSlot } : {}),
      },
    };
    if (!c.outcome.done)
      return {
        ...base,
        result: 'internal',
        detail: 'the worker stopped during this call: prlimit may have acted',
        unfinished: true,
      };
    if (c.outcome.errno === 0) return { ...base, result: 'ok' };
    return {
      ...base,
      result: capabilityErrorForErrno(c.outcome.errno),
      detail: `prlimit(${c.pid}, RLIMIT_MEMLOCK): ${errnoName(c.outcome.errno)}`,
    };
  });
  return [...tapeCalls(replay ?? []), ...own];
}
