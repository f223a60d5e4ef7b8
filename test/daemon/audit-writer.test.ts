// Group commit on a real database: concurrent writes share one transaction, and each promise
// resolves only once its record is committed.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { AuditWriter } from '../../runtime/server/audit/audit-writer.ts';
import { Store } from '../../runtime/store/store.ts';
import type { NewAuditRecord } from '../../runtime/store/audit-store.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);

const rec = (id: string): NewAuditRecord => ({
  decisionId: id,
  time: new Date().toISOString(),
  requester: { pid: 1, uid: 0, gid: 0 },
  vm: null,
  operation: 'set-memlock',
  targetPid: 2,
  bytes: '1',
  policy: null,
  decision: 'deny',
  reason: 'no-policy',
  errorKind: 'no-policy',
  capabilityCalls: [],
  logs: [],
  fuelUsed: 0,
  durationUs: 0,
  totalUs: 1,
});

/**
 * Fakes the writer's clock and timers (setImmediate and nextTick stay real): "held for 200 ms",
 * "quiet for 30 ms" and "backing off for a second" are then exact, however slowly a loaded
 * machine runs the test. The test restores real timers in a finally.
 */
const fakeClock = (): void => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });

describe('AuditWriter', () => {
  it("durability 'full': commits a burst in one write, and resolves no promise before its fdatasync returned", async () => {
    const file = path.join(tempDir(), 'a.db');
    // Each fdatasync of the journal is held until the test releases it (then runs for real).
    const held: Array<() => void> = [];
    const store = Store.open(file, 'full', {
      journalIo: { fdatasync: (fd, done) => held.push(() => fs.fdatasync(fd, (err) => done(err))) },
    });
    const batches: number[] = [];
    const w = new AuditWriter(store.audit, { onCommit: (n) => batches.push(n), holdMs: 0 });
    const settled = new Set<string>();
    const write = (id: string): Promise<void> => w.write(rec(id)).then(() => void settled.add(id));
    const burst = Array.from({ length: 50 }, (_, i) => write(`r${i}`));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    // Written (one write for the first, one for the rest of the phase), one fdatasync under way.
    expect(w.stats).toEqual({ commits: 2, records: 50 });
    expect(held).toHaveLength(1);
    const later = [write('late1'), write('late2')];
    for (let k = 0; k < 20; k++) await new Promise((r) => setImmediate(r));
    expect(held).toHaveLength(1); // one at a time: the later ones wait for the next
    expect(settled.size).toBe(0);
    expect(batches).toEqual([]);
    expect(store.audit.count()).toBe(0); // not acknowledged, so not read either
    held[0]!();
    await Promise.all(burst.slice(0, 1));
    // The first sync covered what was written before it started: the first record only.
    expect([...settled]).toEqual(['r0']);
    for (let k = 0; k < 20 && held.length < 2; k++) await new Promise((r) => setImmediate(r));
    expect(held).toHaveLength(2);
    held[1]!();
    await Promise.all([...burst, ...later]);
    expect(batches).toEqual([1, 51]);
    expect(store.audit.count()).toBe(52);
    await w.close();
    store.close();
    // On disk, in the database, after a clean stop.
    const reader = new Database(file, { readonly: true });
    expect(reader.prepare('SELECT count(*) FROM audit_log').pluck().get()).toBe(52);
    reader.close();
  });

  it("durability 'full': a failed fdatasync fails every record waiting for it, and the next ones are committed", async () => {
    // The first fdatasync is held, then failed; the later ones run for real.
    let fail: ((err: Error) => void) | undefined;
    const store = Store.open(path.join(tempDir(), 'b.db'), 'full', {
      journalIo: { fdatasync: (fd, done) => (fail === undefined ? (fail = done) : fs.fdatasync(fd, done)) },
    });
    const w = new AuditWriter(store.audit, { holdMs: 0 });
    // x1 is written at once and its fdatasync starts; x2 is written at the end of the phase and waits for the next.
    const writes = [w.write(rec('x1')), w.write(rec('x2'))].map((p) =>
      p.then(
        () => 'ok',
        (err: Error) => err.message,
      ),
    );
    for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
    expect(store.audit.unsyncedCount).toBe(2);
    fail!(new Error('EIO: i/o error, fdatasync'));
    // x2 was written after x1 in the journal: cut off with it, so it fails too.
    expect(await Promise.all(writes)).toEqual(['EIO: i/o error, fdatasync', 'EIO: i/o error, fdatasync']);
    await w.write(rec('x3'));
    expect(store.audit.query({ limit: 10, order: 'asc' }).records.map((r) => [r.seq, r.decisionId])).toEqual([
      [1, 'x3'],
    ]);
    await w.close();
    store.close();
  });

  it('tells each waiter of its own record once, also when a waiter commits and flushes another meanwhile (the batch arrays are reused)', async () => {
    const store = Store.open(path.join(tempDir(), 'reuse.db'));
    const w = new AuditWriter(store.audit, { holdMs: 0 });
    const told: string[] = [];
    const waiter = (id: string, then?: () => void) => ({
      committed: () => {
        told.push(id);
        then?.();
      },
      commitFailed: (err: unknown) => told.push(`${id} failed: ${String(err)}`),
    });
    // Batches one after the other first (their arrays are kept for the next ones).
    for (const id of ['a', 'b']) {
      w.commit(rec(id), waiter(id));
      await new Promise((r) => setImmediate(r));
    }
    // c's waiter commits d and flushes it before c's flush has returned; d's commits e the same way.
    w.commit(
      rec('c'),
      waiter('c', () => {
        w.commit(
          rec('d'),
          waiter('d', () => {
            w.commit(rec('e'), waiter('e'));
            w.flush();
          }),
        );
        w.flush();
      }),
    );
    await new Promise((r) => setImmediate(r));
    // And a burst in one phase.
    for (const id of ['f', 'g', 'h']) w.commit(rec(id), waiter(id));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(told).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    expect(store.audit.query({ limit: 20, order: 'asc' }).records.map((r) => [r.seq, r.decisionId])).toEqual(
      ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id, k) => [k + 1, id]),
    );
    await w.close();
    store.close();
  });

  it('holds the batch while more decisions are coming, and commits at once when none are', async () => {
    fakeClock();
    try {
      const store = Store.open(path.join(tempDir(), 'c.db'));
      const batches: number[] = [];
      let inFlight = 3;
      const w = new AuditWriter(store.audit, {
        onCommit: (n) => batches.push(n),
        moreComing: () => inFlight > 0,
        holdMs: 200,
      });
      const first = w.write(rec('h1'));
      // Decisions finishing over the next turns of the event loop join the held batch.
      await new Promise((r) => setImmediate(r));
      const second = w.write(rec('h2'));
      await new Promise((r) => setImmediate(r));
      const third = w.write(rec('h3'));
      await elapse(199);
      expect(batches).toEqual([]); // still held
      await elapse(1);
      await Promise.all([first, second, third]);
      expect(batches).toEqual([3]);
      inFlight = 0;
      await w.write(rec('alone'));
      expect(batches).toEqual([3, 1]);
      store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('commits a lone record within the current task, without waiting for a turn of the event loop', async () => {
    const store = Store.open(path.join(tempDir(), 'd.db'));
    const batches: number[] = [];
    const w = new AuditWriter(store.audit, { onCommit: (n) => batches.push(n), moreComing: () => false });
    let loopTurned = false;
    setImmediate(() => (loopTurned = true));
    await w.write(rec('lone'));
    expect(loopTurned).toBe(false);
    expect(store.audit.get('lone')).not.toBeNull();
    // Records written by the continuations of one task still share one commit.
    await Promise.all([w.write(rec('p1')), Promise.resolve().then(() => w.write(rec('p2')))]);
    expect(batches).toEqual([1, 2]);
    store.close();
  });

  it('with holdMs 0, commits the first record of an I/O phase at once and batches the rest at its end', async () => {
    const store = Store.open(path.join(tempDir(), 'e.db'));
    const batches: number[] = [];
    const w = new AuditWriter(store.audit, { onCommit: (n) => batches.push(n), moreComing: () => true, holdMs: 0 });
    const first = w.write(rec('i1'));
    expect(store.audit.get('i1')).toMatchObject({ decisionId: 'i1' }); // committed before write() returned
    const second = w.write(rec('i2'));
    await new Promise((r) => process.nextTick(r));
    const third = w.write(rec('i3'));
    expect(store.audit.get('i2')).toBeNull(); // waiting for the end of the phase
    await Promise.all([first, second, third]);
    expect(batches).toEqual([1, 2]);
    // The next phase starts afresh: its first record is committed at once again.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const fourth = w.write(rec('i4'));
    expect(batches).toEqual([1, 2, 1]);
    await fourth;
    store.close();
  });

  it('rejects every write of a failed batch and keeps working afterwards', async () => {
    const store = Store.open(path.join(tempDir(), 'b.db'));
    const w = new AuditWriter(store.audit);
    await w.write(rec('first'));
    const results = await Promise.allSettled([w.write(rec('x')), w.write({ ...rec('bad'), time: 'not a date' })]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(store.audit.get('x')).toBeNull();
    await w.write(rec('y'));
    expect(store.audit.get('y')).not.toBeNull();
    store.close();
  });
});

describe('AuditWriter drives the indexer', () => {
  const indexed = (store: Store): number =>
    store.db.prepare('SELECT count(*) FROM audit_index').pluck().get() as number;

  it('indexes once enough records are pending, after the answers, even under load', async () => {
    const store = Store.open(path.join(tempDir(), 'i.db'));
    const batches: string[] = [];
    const w = new AuditWriter(store.audit, {
      moreComing: () => true,
      holdMs: 0,
      indexBatch: 8,
      indexIdleMs: 60_000,
      onIndex: (n, _ms, kind) => batches.push(`${kind} ${n}`),
    });
    await Promise.all(Array.from({ length: 7 }, (_, i) => w.write(rec(`a${i}`))));
    await new Promise((r) => setImmediate(r));
    expect(indexed(store)).toBe(0); // below the batch size and never idle: nothing indexed yet
    expect(store.audit.unindexed).toBe(7);
    const ninth = Promise.all([w.write(rec('a7')), w.write(rec('a8'))]);
    await ninth;
    expect(indexed(store)).toBe(0); // the answers come first: indexing waits for the next turn
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    // One step: the batches are sized by time, not by the count that started them (8), and the
    // first takes all 9 (from the journal into the log, then into the index).
    expect(batches).toEqual(['ingest 9', 'index 9']);
    expect(indexed(store)).toBe(9);
    expect(store.audit.unindexed).toBe(0);
    w.close();
    store.close();
  });

  it('indexes whatever is pending once the log has been quiet, then stops when closed', async () => {
    fakeClock();
    try {
      const store = Store.open(path.join(tempDir(), 'j.db'));
      const batches: number[] = [];
      const w = new AuditWriter(store.audit, {
        indexBatch: 100,
        indexIdleMs: 30,
        onIndex: (n, _ms, kind) => kind === 'index' && batches.push(n),
      });
      await w.write(rec('q1'));
      await elapse(20);
      await w.write(rec('q2'));
      await elapse(20);
      expect(indexed(store)).toBe(0); // 40 ms since q1, but only 20 since q2: not quiet yet
      await elapse(10);
      expect(batches).toEqual([2]);
      expect(indexed(store)).toBe(2);
      expect(store.audit.unindexed).toBe(0);
      w.close();
      await w.write(rec('after-close')); // still committed (flush), but no longer indexed by the writer
      await elapse(1000);
      expect(indexed(store)).toBe(2);
      // Reads catch up by themselves.
      expect(store.audit.get('after-close')).toMatchObject({ decisionId: 'after-close', seq: 3 });
      expect(indexed(store)).toBe(3);
      store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('reports an index batch that failed, and the records stay committed and readable', async () => {
    fakeClock();
    try {
      const store = Store.open(path.join(tempDir(), 'k.db'));
      const errors: unknown[] = [];
      const w = new AuditWriter(store.audit, { indexBatch: 1, indexIdleMs: 20, onIndexError: (e) => errors.push(e) });
      // Another connection holds the write lock: the index batch cannot commit (busy), the append already did.
      store.db.pragma('busy_timeout = 0');
      await w.write(rec('locked'));
      const other = new Database(store.db.name);
      other.exec('BEGIN IMMEDIATE');
      await elapse(0);
      expect(errors).toHaveLength(1);
      expect(String(errors[0])).toMatch(/locked|busy/i);
      // While it keeps failing, commits do not retry it each time (one error, not one per decision)...
      other.exec('ROLLBACK');
      for (let i = 0; i < 3; i++) await w.write(rec(`more${i}`));
      other.exec('BEGIN IMMEDIATE');
      await elapse(0);
      expect(errors).toHaveLength(1);
      // ...but once the log has been quiet, it tries again.
      await elapse(20);
      expect(errors).toHaveLength(2);
      other.exec('ROLLBACK');
      other.close();
      expect(store.audit.get('locked')).toMatchObject({ decisionId: 'locked' });
      expect(store.audit.count()).toBe(4);
      w.close();
      store.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('AuditWriter bounds the time each turn spends ingesting and indexing', () => {
  it('sizes each batch to the budget on its clock, and shrinks the next when the work gets dearer', async () => {
    const store = Store.open(path.join(tempDir(), 't.db'));
    const mark = store.db.prepare('SELECT ingested_through FROM audit_ingester').pluck();
    const cursor = store.db.prepare('SELECT indexed_through FROM audit_indexer').pluck();
    // The injected clock: each row ingested or indexed since the last read costs what the test
    // says (binary fractions of a millisecond, so that sums are exact).
    const cost = { ingest: 1 / 64, index: 1 / 32 };
    let spent = 0;
    let seen = { ingest: 0, index: 0 };
    const clock = (): number => {
      const now = { ingest: mark.get() as number, index: cursor.get() as number };
      spent += (now.ingest - seen.ingest) * cost.ingest + (now.index - seen.index) * cost.index;
      seen = now;
      return spent;
    };
    let turn: Array<{ kind: string; rows: number; ms: number }> = [];
    const turns: Array<typeof turn> = [];
    const w = new AuditWriter(store.audit, {
      holdMs: 0,
      indexBatch: 1,
      indexIdleMs: 60_000,
      indexBudgetMs: 1,
      clock,
      onIndex: (rows, ms, kind) => turn.push({ kind, rows, ms }),
    });
    // A writer step runs two turns after it is scheduled, so one turn of this loop sees at most one.
    const drain = async (): Promise<void> => {
      for (let i = 0; store.audit.unindexed > 0; i++) {
        if (i > 100_000) throw new Error('not drained');
        await new Promise((r) => setImmediate(r));
        if (turn.length > 0) turns.push(turn), (turn = []);
      }
    };
    const write = (from: number, n: number): Promise<unknown> =>
      Promise.all(Array.from({ length: n }, (_, k) => w.write(rec(`t${from + k}`))));
    const largest = (kind: string, of: typeof turns): number =>
      Math.max(
        ...of
          .flat()
          .filter((b) => b.kind === kind)
          .map((b) => b.rows),
      );

    await write(0, 3000);
    await drain();
    expect(store.audit.count()).toBe(3000);
    // Every turn within the budget, whatever the backlog (3000 records); the batches grew to
    // what the budget allows: 64 rows at 1/64 ms, 32 at 1/32 ms.
    for (const t of turns) expect(t.reduce((sum, b) => sum + b.ms, 0)).toBeLessThanOrEqual(1);
    expect(largest('ingest', turns)).toBe(64);
    expect(largest('index', turns)).toBe(32);
    expect(w.batchSizes).toEqual({ ingest: 64, index: 32 });

    // Four times dearer (a loaded disk, pages out of cache): one batch of each kind overruns,
    // measured, and the next ones fit again.
    cost.ingest = 1 / 16;
    cost.index = 1 / 8;
    const before = turns.length;
    await write(3000, 3000);
    await drain();
    expect(store.audit.count()).toBe(6000);
    const after = turns.slice(before).flat();
    const overruns = after.filter((b) => b.ms > 1);
    expect(overruns.map((b) => b.kind).sort()).toEqual(['index', 'ingest']);
    const settled = after.slice(after.indexOf(overruns.at(-1)!) + 1);
    expect(settled.length).toBeGreaterThan(100);
    for (const b of settled) expect(b.ms).toBeLessThanOrEqual(1);
    expect(w.batchSizes).toEqual({ ingest: 16, index: 8 });
    w.close();
    store.close();
  });

  it('says when too many records wait to be ingested, and no append ever ingests them all at once', async () => {
    fakeClock();
    try {
      const file = path.join(tempDir(), 'u.db');
      const store = Store.open(file, 'normal', { maxUningested: 12 });
      const errors: unknown[] = [];
      const w = new AuditWriter(store.audit, { maxBacklog: 8, indexIdleMs: 20, onIndexError: (e) => errors.push(e) });
      // Another connection holds the write lock: nothing can be ingested.
      store.db.pragma('busy_timeout = 0');
      const other = new Database(file);
      other.exec('BEGIN IMMEDIATE');
      for (let i = 0; i < 7; i++) await w.write(rec(`b${i}`));
      expect(w.backlogged).toBe(false);
      await w.write(rec('b7'));
      expect(w.backlog).toBe(8);
      expect(w.backlogged).toBe(true);
      // Past the store's own bound an append is refused (retryable), not turned into one long
      // synchronous ingestion of everything waiting.
      await Promise.all(Array.from({ length: 4 }, (_, i) => w.write(rec(`c${i}`))));
      await expect(w.write(rec('over'))).rejects.toMatchObject({
        name: 'AuditBacklogError',
        message: expect.stringMatching(/12 audit records wait .* \(at most 12\).*retry later/),
      });
      expect(other.prepare('SELECT count(*) FROM audit_log').pluck().get()).toBe(0);
      await elapse(20); // quiet: the writer tries, and fails
      expect(errors).toHaveLength(1);
      // Once the database takes writes again, the writer catches up (in bounded steps) and the
      // refusals end.
      other.exec('ROLLBACK');
      other.close();
      await elapse(1000);
      for (let i = 0; i < 100 && w.backlog > 0; i++) await elapse(20);
      expect(w.backlog).toBe(0);
      expect(w.backlogged).toBe(false);
      await w.write(rec('again'));
      expect(store.audit.count()).toBe(13);
      w.close();
      store.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

/**
 * With the fake clock: moves it on by `ms` (running the timers due), then lets the loop turn
 * until the work they queued is done (an index batch runs two turns after it is scheduled).
 */
async function elapse(ms: number): Promise<void> {
  vi.advanceTimersByTime(ms);
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
}
