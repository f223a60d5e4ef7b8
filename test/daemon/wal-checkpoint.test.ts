// WAL checkpoints off the main thread, on a real database: the daemon's connection never
// checkpoints inside a commit (that was an 80-120 ms stall at a moment any client could bring
// about), and the checkpoint worker (a real worker thread with its own connection) keeps the
// write-ahead log bounded however many audit records go through a real AuditWriter. A worker
// whose checkpoints fail, or that stops, is reported and costs the audit nothing.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AuditWriter } from '../../runtime/server/audit/audit-writer.ts';
import { WalCheckpointer, type WalCheckpointerOptions } from '../../runtime/store/checkpoint/wal-checkpointer.ts';
import { lookAtWal } from '../../runtime/store/checkpoint/wal-index.ts';
import type { NewAuditRecord } from '../../runtime/store/audit-store.ts';
import { Store } from '../../runtime/store/store.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

function startCheckpointer(options: WalCheckpointerOptions): WalCheckpointer {
  const c = new WalCheckpointer(options);
  open.push(c);
  return c;
}

function openStore(file: string, durability: 'normal' | 'full' = 'normal'): Store {
  const s = Store.open(file, durability);
  open.push(s);
  return s;
}

const rec = (i: number): NewAuditRecord => ({
  decisionId: `d${i}`,
  time: new Date(Date.UTC(2026, 0, 1) + i).toISOString(),
  requester: { pid: 1000 + (i % 50), uid: 0, gid: 0 },
  vm: { uuid: `uuid-${i % 7}`, name: `vm-${i % 7}`, id: 1, labels: [] },
  operation: 'set-memlock',
  targetPid: 2000 + i,
  bytes: String(4096 * i),
  policy: { name: 'p', revision: 1, sha256: 'a'.repeat(64) },
  decision: i % 3 === 0 ? 'deny' : 'allow',
  reason: i % 3 === 0 ? 'over-cap' : '',
  capabilityCalls: [],
  logs: [{ level: 'info', message: `a log line of the policy, decision ${i}` }],
  fuelUsed: i,
  durationUs: 10,
  totalUs: 20,
});

const walBytes = (file: string): number => fs.statSync(`${file}-wal`).size;

/** Lets the writer's ingest and index steps run (one per turn or two) until nothing waits. */
async function drained(store: Store): Promise<void> {
  for (let turns = 0; store.audit.unindexed > 0; turns++) {
    if (turns > 100_000) throw new Error(`the writer left ${store.audit.unindexed} records unindexed`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('WAL checkpoints', () => {
  it.for(['normal', 'full'] as const)(
    'the main connection never checkpoints, and the worker keeps the WAL bounded through 20,000 audit records (durability %s)',
    { timeout: 120_000 },
    async (durability) => {
      const file = path.join(tempDir(), 'state', 'capgate.db');
      const store = openStore(file, durability);
      expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      const threshold = 200;
      const checkpoints: number[] = [];
      // Looks only when told (checkNow), so that each look follows a burst: no timing in the test.
      const checkpointer = startCheckpointer({
        database: file,
        durability,
        thresholdPages: threshold,
        pollMs: 3_600_000,
        onCheckpoint: (r) => checkpoints.push(r.checkpointed),
      });
      const writer = new AuditWriter(store.audit, { holdMs: 0 });
      const pageBytes = 4096;
      let maxWal = 0;
      let maxWaiting = 0;
      const BURST = 500;
      for (let burst = 0; burst < 40; burst++) {
        await Promise.all(Array.from({ length: BURST }, (_, k) => writer.write(rec(burst * BURST + k))));
        await drained(store);
        maxWal = Math.max(maxWal, walBytes(file));
        const waiting = await checkpointer.checkNow();
        expect(waiting).not.toBeNull();
        maxWaiting = Math.max(maxWaiting, waiting!);
      }
      writer.close();
      // Every record went through the log and the index: 20,000 records are ~14 MB of JSON and
      // index rows, several thousand pages of WAL without checkpoints.
      expect(store.audit.count()).toBe(20_000);
      expect(checkpoints.length).toBeGreaterThan(5);
      // After each look, less than the threshold waits; the file never held much more than the
      // threshold and a burst (the writer starts it again from the beginning once copied; a burst
      // writes its pages more than once, in the batches of the ingester and the indexer).
      expect(maxWaiting).toBeLessThan(threshold);
      const burstPages = Math.ceil((BURST * JSON.stringify(rec(0)).length * 2) / pageBytes);
      const bound = threshold + 4 * burstPages;
      expect(maxWal).toBeLessThanOrEqual(bound * pageBytes);
      // What the log would have held without checkpoints is at least what the database holds now.
      expect(fs.statSync(file).size).toBeGreaterThan(3 * bound * pageBytes);
      expect(checkpointer.problem).toBeNull();
      expect(checkpointer.up).toBe(true);
    },
  );

  // SQLite starts the log again from its beginning only in a write transaction that begins once
  // every frame is copied back; under writes that never pause, a PASSIVE pass never ends complete
  // (a frame always came meanwhile) unless the writer holds back for its last pass. The worker
  // looks when told, every few batches, while the writer goes on: how far the log grows between
  // two looks is then set by the test, not by how much CPU the worker gets on a busy machine.
  it.for(['normal', 'full'] as const)(
    'keeps the WAL file bounded while the writer never pauses (durability %s)',
    { timeout: 120_000 },
    async (durability) => {
      const file = path.join(tempDir(), 'state', 'capgate.db');
      const store = openStore(file, durability);
      const threshold = 100;
      const checkpointer = startCheckpointer({
        database: file,
        durability,
        thresholdPages: threshold,
        pollMs: 3_600_000,
      });
      await checkpointer.ready();
      const writer = new AuditWriter(store.audit, {
        holdMs: 0,
        indexBatch: 1,
        indexIdleMs: 1,
        writeGate: checkpointer.writeGate,
      });
      const pageBytes = 4096;
      let maxWal = 0;
      const RECORDS = 30_000;
      const BATCH = 50;
      const BATCHES_PER_LOOK = 5;
      let look: Promise<number | null> | undefined;
      for (let i = 0; i < RECORDS; i += BATCH) {
        await Promise.all(Array.from({ length: BATCH }, (_, k) => writer.write(rec(i + k))));
        await new Promise((r) => setImmediate(r));
        maxWal = Math.max(maxWal, walBytes(file));
        // The next look starts once the last one has answered; the writes never wait for either.
        if ((i / BATCH) % BATCHES_PER_LOOK === 0) {
          await look;
          look = checkpointer.checkNow();
        }
      }
      await look;
      await writer.close();
      expect(store.audit.count()).toBe(RECORDS);
      expect(checkpointer.stats.checkpoints).toBeGreaterThan(3);
      // Without the restarts the file holds every frame ever written: more than the database.
      const dbPages = fs.statSync(file).size / pageBytes;
      expect(maxWal / pageBytes).toBeLessThan(dbPages / 2);
      // Two looks apart, the log holds the threshold and ~10 batches (each written more than once:
      // ingested, then indexed); 20 times the threshold leaves room for several looks in a row
      // whose last pass missed its hold on a starved machine.
      expect(maxWal / pageBytes).toBeLessThan(20 * threshold);
    },
  );

  it('checkpoints on its own once the WAL passes the threshold', { timeout: 60_000 }, async () => {
    const file = path.join(tempDir(), 'state', 'capgate.db');
    const store = openStore(file);
    let reported!: () => void;
    let nextReport = new Promise<void>((r) => (reported = r));
    const checkpointer = startCheckpointer({
      database: file,
      durability: 'normal',
      thresholdPages: 20,
      pollMs: 5,
      onCheckpoint: () => {
        reported();
        nextReport = new Promise<void>((r) => (reported = r));
      },
    });
    for (let i = 0; i < 400; i++) store.audit.append([rec(i)]);
    store.audit.indexAll();
    const waiting = (): number => {
      const wal = lookAtWal(file);
      if (!wal.ok) throw new Error(wal.reason);
      return wal.framesWaiting;
    };
    expect(waiting()).toBeGreaterThanOrEqual(20);
    // No write since: its own polls bring it below the threshold (a poll may have caught the
    // writes half way, so this may take more than one checkpoint).
    for (let n = 0; waiting() >= 20; n++) {
      if (n > 100) throw new Error('the worker does not checkpoint');
      await nextReport;
    }
    expect(checkpointer.stats.checkpoints).toBeGreaterThanOrEqual(1);
  });

  it('reports checkpoints that fail, backs off, and the audit goes on', { timeout: 60_000 }, async () => {
    const file = path.join(tempDir(), 'state', 'capgate.db');
    const store = openStore(file);
    const problems: Array<{ kind: string; message: string }> = [];
    const checkpointer = startCheckpointer({
      database: file,
      durability: 'normal',
      thresholdPages: 1,
      pollMs: 3_600_000,
      seams: { failCheckpoints: 'disk I/O error (injected)' },
      onProblem: (kind, message) => problems.push({ kind, message }),
    });
    store.audit.append([rec(1)]);
    store.audit.indexAll();
    await checkpointer.checkNow();
    expect(problems).toEqual([{ kind: 'failed', message: 'disk I/O error (injected)' }]);
    expect(checkpointer.up).toBe(false);
    expect(checkpointer.problem).toMatch(/WAL checkpoint failed: disk I\/O error \(injected\)/);
    expect(checkpointer.stats.failures).toBe(1);
    // The main thread's commits do not depend on it.
    store.audit.append([rec(2), rec(3)]);
    expect(store.audit.count()).toBe(3);
  });

  it('reports a worker that stops, and starts it again', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const file = path.join(dir, 'state', 'capgate.db');
    // The worker never creates the database: here it is not there yet, so the worker stops.
    const problems: string[] = [];
    let problem!: () => void;
    let nextProblem = new Promise<void>((r) => (problem = r));
    const checkpointer = startCheckpointer({
      database: file,
      durability: 'normal',
      thresholdPages: 1,
      pollMs: 3_600_000,
      retryMs: { first: 20, max: 40 },
      onProblem: (kind, message) => {
        problems.push(`${kind}: ${message}`);
        problem();
        nextProblem = new Promise<void>((r) => (problem = r));
      },
    });
    await nextProblem;
    expect(problems[0]).toMatch(
      /^stopped: the WAL checkpoint worker stopped \(exit code 1\): .*open.*; restarting it in 20 ms$/,
    );
    expect(checkpointer.problem).toMatch(/stopped/);
    expect(fs.existsSync(file)).toBe(false);
    await nextProblem; // tried again (and stopped again)
    expect(checkpointer.stats.restarts).toBeGreaterThanOrEqual(1);
    expect(problems[1]).toMatch(/restarting it in 40 ms$/);
    // Once the database is there, a restarted worker runs and checkpoints.
    const store = openStore(file);
    store.audit.append([rec(1)]);
    store.audit.indexAll();
    // The worker started before the file was there stops once more; the next one runs.
    for (let tries = 0; ; tries++) {
      await checkpointer.ready();
      try {
        // Copied back; what waits is at most the worker's own write that started the log again.
        expect(await checkpointer.checkNow()).toBeLessThanOrEqual(1);
        break;
      } catch (err) {
        if (tries > 10) throw err;
      }
    }
    expect(checkpointer.up).toBe(true);
    expect(checkpointer.problem).toBeNull();
  });
});
