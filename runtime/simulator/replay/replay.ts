// Replays past traffic against a new policy revision and lists every decision that would change.
import type { AuditRecord } from '../../wire/index.ts';
import type { DecideOptions, SimulatedDecision, Simulator } from '../simulator.ts';
import { replayInputFrom } from './world-from-record.ts';

export interface ReplayedDecision {
  record: AuditRecord;
  outcome: SimulatedDecision;
  /** 'decision': allow<->deny; 'reason': both deny, different reason. */
  change: 'none' | 'decision' | 'reason';
  assumptions: string[];
}

export interface ReplayResult {
  replayed: ReplayedDecision[];
  /** Records where no policy ran (unknown requester, nothing bound): the policy cannot change them. */
  skipped: AuditRecord[];
  changed: number;
  unchanged: number;
}

export async function replayAudit(
  simulator: Simulator,
  sha256: string,
  records: AuditRecord[],
  options: DecideOptions & { onRecord?: (r: ReplayedDecision) => void } = {},
): Promise<ReplayResult> {
  const replayed: ReplayedDecision[] = [];
  const skipped: AuditRecord[] = [];
  for (const record of records) {
    const input = replayInputFrom(record);
    if (!input) {
      skipped.push(record);
      continue;
    }
    // The recorded requester is in the rebuilt VM and a policy was bound (one ran): the gate
    // lets it through, as the daemon's did.
    const outcome = await simulator.decide(
      sha256,
      { request: input.request, world: input.world, policyBound: true, absentPids: input.absentPids },
      options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs },
    );
    const change =
      outcome.decision !== record.decision ? 'decision' : outcome.reason !== record.reason ? 'reason' : 'none';
    const r: ReplayedDecision = { record, outcome, change, assumptions: input.assumptions };
    replayed.push(r);
    options.onRecord?.(r);
  }
  const changed = replayed.filter((r) => r.change !== 'none').length;
  return { replayed, skipped, changed, unchanged: replayed.length - changed };
}
