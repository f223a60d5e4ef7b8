// Text and JSON forms of a replay: every changed decision, old vs new.
import { formatWireBytes } from '../byte-size.ts';
import type { Paint } from '../report.ts';
import { PLAIN } from '../report.ts';
import type { ReplayResult } from './replay.ts';

const verdict = (decision: string, reason: string): string =>
  decision === 'allow' ? 'allow' : `deny(${JSON.stringify(reason)})`;

export function formatReplayResult(result: ReplayResult, paint: Paint = PLAIN): string {
  const lines: string[] = [];
  for (const r of result.replayed) {
    if (r.change === 'none') continue;
    const rec = r.record;
    const who = `${rec.vm?.name ?? '?'} pid ${rec.requester.pid} -> target ${rec.targetPid}, bytes ${formatWireBytes(rec.bytes)}`;
    lines.push(`${paint.fail('CHANGED')}  ${rec.decisionId}  ${paint.dim(rec.time)}  ${who}`);
    lines.push(
      `      old: ${verdict(rec.decision, rec.reason)}${rec.policy ? paint.dim(`  (${rec.policy.name} rev ${rec.policy.revision})`) : ''}`,
    );
    lines.push(
      `      new: ${verdict(r.outcome.decision, r.outcome.reason)}${r.outcome.errorKind ? `  [${r.outcome.errorKind}${r.outcome.errorDetail ? `: ${r.outcome.errorDetail}` : ''}]` : ''}`,
    );
    for (const a of r.assumptions) lines.push(paint.dim(`      assumed: ${a}`));
  }
  const skipped = result.skipped.length > 0 ? `, ${result.skipped.length} skipped (no policy ran)` : '';
  lines.push(`${result.unchanged} unchanged, ${result.changed} changed${skipped}`);
  return lines.join('\n');
}

export function replayResultToJson(result: ReplayResult): object {
  return {
    unchanged: result.unchanged,
    changed: result.changed,
    skipped: result.skipped.map((r) => r.decisionId),
    changes: result.replayed
      .filter((r) => r.change !== 'none')
      .map((r) => ({
        decisionId: r.record.decisionId,
        time: r.record.time,
        change: r.change,
        old: { decision: r.record.decision, reason: r.record.reason },
        new: {
          decision: r.outcome.decision,
          reason: r.outcome.reason,
          ...(r.outcome.errorKind ? { errorKind: r.outcome.errorKind } : {}),
        },
        assumptions: r.assumptions,
      })),
  };
}
