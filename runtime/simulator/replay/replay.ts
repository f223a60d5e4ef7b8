// Replays past traffic against a new policy revision and lists every decision that would change.
import type { PolicyEngine } from '../../engine/api.ts';
import type { Outcome } from '../../engine/outcome.ts';
import type { AuditRecord } from '../../wire/index.ts';
import { replayInputFrom } from './world-from-record.ts';

export interface ReplayedDecision {
  record: AuditRecord;
  outcome: Outcome;
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
  engine: PolicyEngine,
  sha256: string,
  records: AuditRecord[],
  options: { deadlineMs?: number; onRecord?: (r: ReplayedDecision) => void } = {},
): Promise<ReplayResult> {
  const replayed: ReplayedDecision[] = [];
  const skipped: AuditRecord[] = [];
  for (const record of records) {
    const input = replayInputFrom(record);
    if (!input) {
      skipped.push(record);
      continue;
    }
    const outcome = await engine.evaluate(
      sha256,
      input.request,
      { kind: 'simulated', world: input.world },
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
