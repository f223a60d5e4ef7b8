// The audit record's JSON (the journal's and audit_log's `doc`) is a contract. The request path
// stamps its records with their schema version itself, first, so that the store writes them as
// they are (auditDoc): the text must be the one the store's own stamping has always made.
// The real pipeline, scheduler and metrics; an engine that allows after one set-memlock.
import { afterAll, describe, expect, it } from 'vitest';
import type { Outcome } from '../../runtime/engine/outcome.ts';
import { auditDoc, type NewAuditRecord } from '../../runtime/store/audit-store.ts';
import { recordingMetrics, recordingPipeline } from '../support/recording-pipeline.ts';

const metrics = recordingMetrics();
afterAll(() => metrics.close());

const OUTCOME: Outcome = {
  decision: 'allow',
  reason: '',
  fuelUsed: 1234,
  durationUs: 56,
  capabilityCalls: [
    { op: 'query-vm-identity', pid: 11, result: 'some', vmUuid: 'doc-vm' },
    {
      op: 'set-memlock',
      pid: 11,
      bytes: 4096n,
      result: 'ok',
      effect: { before: { soft: 8192n, hard: 8192n }, startTime: 77 },
    },
  ],
  logs: [{ level: 'info', message: 'allowing "4096" bytes ✓' }],
};

/** A pipeline for the doc VM whose engine answers OUTCOME, recording into `records`. */
function docPipeline(
  records: NewAuditRecord[],
  engine: Parameters<typeof recordingPipeline>[0]['engine'] = { evaluate: () => Promise.resolve(OUTCOME) },
): ReturnType<typeof recordingPipeline> {
  return recordingPipeline({
    vm: { uuid: 'doc-vm', name: 'doc "vm"', id: 1, labels: [['k', 'v']] },
    engine,
    metrics,
    records,
    deadlineMs: 2000,
  });
}

async function recordOfOneDecision(): Promise<NewAuditRecord> {
  const records: NewAuditRecord[] = [];
  const pipeline = docPipeline(records);
  const r = await pipeline.decide({ pid: process.pid, uid: 0, gid: 0 } as never, 'set-memlock', 11, 4096n);
  expect(r).toMatchObject({ ok: true, response: { decision: 'allow' } });
  expect(records).toHaveLength(1);
  return records[0]!;
}

describe("a decision's audit record", () => {
  it('is written as the store has always stamped it: the same JSON, schemaVersion first', async () => {
    const record = await recordOfOneDecision();
    const { schemaVersion, ...unstamped } = record;
    expect(schemaVersion).toBe(1);
    const doc = auditDoc(record);
    expect(doc).toBe(JSON.stringify({ schemaVersion: 1, ...unstamped }));
    expect(doc).toBe(auditDoc(unstamped));
    expect(Object.keys(JSON.parse(doc) as object)).toEqual([
      'schemaVersion',
      'decisionId',
      'time',
      'requester',
      'vm',
      'operation',
      'targetPid',
      'bytes',
      'policy',
      'decision',
      'reason',
      'capabilityCalls',
      'logs',
      'fuelUsed',
      'durationUs',
      'totalUs',
    ]);
    expect(doc).toContain(
      '"capabilityCalls":[{"op":"query-vm-identity","pid":11,"result":"some","vmUuid":"doc-vm"},{"op":"set-memlock","pid":11,"bytes":"4096","result":"ok","before":{"soft":"8192","hard":"8192"}}]',
    );
    expect(new Date(record.time).toISOString()).toBe(record.time);
  });

  it("shares the requester and the policy between a connection's records, frozen: the same JSON in each", async () => {
    const records: NewAuditRecord[] = [];
    const pipeline = docPipeline(records);
    const peer = { pid: process.pid, uid: 0, gid: 0 } as never;
    await pipeline.decide(peer, 'set-memlock', 11, 4096n);
    await pipeline.decide(peer, 'set-memlock', 11, 4096n);
    const [a, b] = records;
    expect(b!.requester).toBe(a!.requester);
    expect(b!.policy).toBe(a!.policy);
    expect(Object.isFrozen(a!.requester) && Object.isFrozen(a!.policy)).toBe(true);
    expect(auditDoc(b!).replace(b!.decisionId, '').replace(b!.time, '')).toMatch(
      /"requester":\{"pid":\d+,"uid":0,"gid":0\},.*"policy":\{"name":"[^"]+","revision":\d+,"sha256":"[^"]+"(,"keyId":"[^"]*")?\}/,
    );
  });

  it('decideHere answers a decision settled on this thread with its result, one settled later with a promise: the same record and answer', async () => {
    const answers: unknown[] = [];
    for (const engine of [
      { evaluate: () => Promise.resolve(OUTCOME), evaluateHere: () => OUTCOME },
      { evaluate: () => Promise.resolve(OUTCOME) },
    ]) {
      const records: NewAuditRecord[] = [];
      const pipeline = docPipeline(records, engine);
      const r = pipeline.decideHere({ pid: process.pid, uid: 0, gid: 0 } as never, 'set-memlock', 11, 4096n);
      expect(r instanceof Promise).toBe(engine.evaluateHere === undefined);
      const result = await r;
      expect(result).toMatchObject({ ok: true, response: { decision: 'allow', decisionId: records[0]!.decisionId } });
      answers.push({ ...(result as { response: object }).response, decisionId: '' });
      expect(records).toHaveLength(1);
    }
    expect(answers[0]).toEqual(answers[1]);
  });
});
