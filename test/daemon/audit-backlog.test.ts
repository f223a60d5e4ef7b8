// Back-pressure from the audit: when records wait to be moved into the database faster than it
// takes them (here: another connection holds its write lock), the request socket refuses new
// requests with a retryable 503 before anything is decided, done or recorded, instead of letting
// the backlog (and the main thread's work to catch up) grow without bound; and it takes them
// again once the writer has caught up. The real pipeline, writer, store and request handler.
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Engine } from '../../runtime/engine/engine.ts';
import { AuditWriter } from '../../runtime/server/audit/audit-writer.ts';
import { DaemonMetrics } from '../../runtime/server/metrics/daemon-metrics.ts';
import type { PolicyService } from '../../runtime/server/policies/policy-service.ts';
import { DecisionPipeline } from '../../runtime/server/request/decision-pipeline.ts';
import { requestHandler } from '../../runtime/server/request/request-api.ts';
import { FairScheduler } from '../../runtime/server/scheduler/fair-scheduler.ts';
import { VmRegistry } from '../../runtime/server/state/vm-registry.ts';
import { Store } from '../../runtime/store/store.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { everyRequesterIn } from '../support/pipeline-identity.ts';

afterAll(removeTempDirs);

describe('audit back-pressure', () => {
  it('answers 503 overloaded with Retry-After while the audit backlog is too long, and decides again once it caught up', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const metrics = new DaemonMetrics({
      policiesLoaded: () => 0,
      vmsRegistered: () => 0,
      queued: () => 0,
      inFlight: () => 0,
    });
    const file = path.join(tempDir(), 'state', 'capgate.db');
    const store = Store.open(file);
    try {
      const audit = new AuditWriter(store.audit, { holdMs: 0, maxBacklog: 5 });
      const pipeline = new DecisionPipeline({
        // Never reached: the requester is in no VM, so every decision is a deny the daemon makes.
        engine: {} as Engine,
        policies: { bindings: { get: () => null } } as unknown as PolicyService,
        vms: new VmRegistry(),
        identity: everyRequesterIn(null),
        scheduler: new FairScheduler({ globalConcurrency: 1, perKeyInFlight: 1, maxQueued: 10, maxQueuedPerKey: 10 }),
        audit,
        metrics,
        requestDeadlineMs: 10_000,
        evaluationDeadlineMs: 10_000,
      });
      const handler = requestHandler({
        pipeline,
        retryAfterS: 1,
        health: () => ({ status: 'ok', version: 'test', uptimeS: 0 }),
        version: 'test',
      });
      const ask = async (): Promise<{ status: number; body: unknown; retryAfter?: string }> => {
        const reply = await handler({
          method: 'POST',
          path: '/v1/operations/set-memlock',
          query: new URLSearchParams(),
          headers: { 'content-type': 'application/json' },
          body: Buffer.from(JSON.stringify({ targetPid: process.pid, bytes: '4096' })),
          peer: { pid: process.pid, uid: 0, gid: 0, startTime: 1 },
          waitedMs: 0,
        });
        if (reply.kind !== 'json') throw new Error(`unexpected reply ${reply.kind}`);
        return {
          status: reply.status,
          body: reply.body,
          ...(reply.headers?.['retry-after'] !== undefined ? { retryAfter: reply.headers['retry-after'] } : {}),
        };
      };

      store.db.pragma('busy_timeout = 0');
      const other = new Database(file);
      other.exec('BEGIN IMMEDIATE'); // the database takes no writes
      for (let i = 0; i < 5; i++)
        expect(await ask()).toMatchObject({ status: 200, body: { decision: 'deny', reason: 'unknown-requester' } });
      // The writer tries once the log is quiet, and fails.
      vi.advanceTimersByTime(20);
      for (let k = 0; k < 4; k++) await new Promise((r) => setImmediate(r));
      expect(audit.backlog).toBe(5);
      const refused = await ask();
      expect(refused).toEqual({
        status: 503,
        retryAfter: '1',
        body: {
          error: {
            code: 'overloaded',
            message:
              '5 audit records wait to be written to the database: the daemon takes no new request until it has caught up',
            hint: 'retry after 1 s',
          },
        },
      });
      // Refused before anything was recorded.
      expect(audit.stats.records).toBe(5);
      expect(await metrics.registry.getSingleMetricAsString('capgate_requests_rejected_total')).toMatch(
        /reason="audit-backlog"\} 1/,
      );
      // The database takes writes again: the writer catches up (its retry needs no new record,
      // since none comes while requests are refused) and requests are decided again.
      other.exec('ROLLBACK');
      other.close();
      for (let i = 0; i < 50 && audit.backlogged; i++) {
        vi.advanceTimersByTime(1000);
        for (let k = 0; k < 4; k++) await new Promise((r) => setImmediate(r));
      }
      expect(audit.backlog).toBe(0);
      expect(await ask()).toMatchObject({ status: 200, body: { decision: 'deny' } });
      expect(store.audit.count()).toBe(6);
      audit.close();
    } finally {
      vi.useRealTimers();
      metrics.close();
      store.close();
    }
  });
});
