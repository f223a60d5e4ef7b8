// A request's deadline counts from its arrival, not from when the pipeline first sees it: a
// request that already waited its whole deadline for its turn on the main thread (turn-queue.ts)
// is denied as late without being evaluated, and its record's time is when it arrived.
// The real pipeline, scheduler and metrics; an engine that must not be asked, an audit that keeps records.
import { afterAll, describe, expect, it } from 'vitest';
import type { DecisionPipeline } from '../../runtime/server/request/decision-pipeline.ts';
import type { NewAuditRecord } from '../../runtime/store/audit-store.ts';
import { recordingMetrics, recordingPipeline } from '../support/recording-pipeline.ts';

const DEADLINE_MS = 2000;
const metrics = recordingMetrics();
afterAll(() => metrics.close());

function pipelineWith(records: NewAuditRecord[], evaluated: string[]): DecisionPipeline {
  return recordingPipeline({
    vm: { uuid: 'late-vm', name: 'late', id: 1, labels: [] },
    engine: {
      evaluate: () => {
        evaluated.push('evaluate');
        return Promise.reject(new Error('a late request must not be evaluated'));
      },
    },
    metrics,
    records,
    deadlineMs: DEADLINE_MS,
  });
}

describe("a request's deadline", () => {
  it('counts the time it waited for its turn: past it, the request is denied late, unevaluated, and audited at its arrival', async () => {
    const records: NewAuditRecord[] = [];
    const evaluated: string[] = [];
    const pipeline = pipelineWith(records, evaluated);
    const before = Date.now();
    const r = await pipeline.decide(
      { pid: process.pid, uid: 0, gid: 0 } as never,
      'set-memlock',
      process.pid,
      4096n,
      DEADLINE_MS,
    );
    expect(r).toMatchObject({ ok: true, response: { decision: 'deny', errorKind: 'deadline' } });
    expect(evaluated).toEqual([]);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ decision: 'deny', errorKind: 'deadline', capabilityCalls: [] });
    // Its time is its arrival: at least the wait before this call.
    expect(before - Date.parse(records[0]!.time)).toBeGreaterThanOrEqual(DEADLINE_MS - 1);
  });
});
