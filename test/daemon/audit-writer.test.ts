// Group commit on a real database: concurrent writes share one transaction, and each promise
// resolves only once its record is committed.
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
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

describe('AuditWriter', () => {
  it('commits a burst in one transaction, visible to another connection when the promises resolve', async () => {
    const file = path.join(tempDir(), 'a.db');
    const store = Store.open(file, 'full');
    const batches: number[] = [];
    const w = new AuditWriter(store.audit, { onCommit: (n) => batches.push(n) });
    const reader = new Database(file, { readonly: true });
    const count = (): number => (reader.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
    const writes = Array.from({ length: 50 }, (_, i) => w.write(rec(`r${i}`)));
    expect(count()).toBe(0); // nothing is committed before the batch runs
    await Promise.all(writes);
    expect(count()).toBe(50);
    expect(batches).toEqual([50]);
    await w.write(rec('later'));
    expect(batches).toEqual([50, 1]);
    expect(w.stats).toEqual({ commits: 2, records: 51 });
    reader.close();
    store.close();
  });

  it('holds the batch while more decisions are coming, and commits at once when none are', async () => {
    const store = Store.open(path.join(tempDir(), 'c.db'));
    const batches: number[] = [];
    let inFlight = 3;
    const w = new AuditWriter(store.audit, { onCommit: (n) => batches.push(n), moreComing: () => inFlight > 0, holdMs: 200 });
    const first = w.write(rec('h1'));
    // Decisions finishing over the next turns of the event loop join the held batch.
    await new Promise((r) => setImmediate(r));
    const second = w.write(rec('h2'));
    await new Promise((r) => setImmediate(r));
    const third = w.write(rec('h3'));
    await Promise.all([first, second, third]);
    expect(batches).toEqual([3]);
    inFlight = 0;
    await w.write(rec('alone'));
    expect(batches).toEqual([3, 1]);
    store.close();
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

  it('with holdMs 0, batches under load until the end of the I/O phase instead of holding', async () => {
    const store = Store.open(path.join(tempDir(), 'e.db'));
    const batches: number[] = [];
    const w = new AuditWriter(store.audit, { onCommit: (n) => batches.push(n), moreComing: () => true, holdMs: 0 });
    const first = w.write(rec('i1'));
    await new Promise((r) => process.nextTick(r));
    const second = w.write(rec('i2'));
    await Promise.all([first, second]);
    expect(batches).toEqual([2]);
    // Held for 1 ms instead, a write issued after the next loop turn would have joined: here it does not.
    const third = w.write(rec('i3'));
    await new Promise((r) => setImmediate(r));
    await third;
    const fourth = w.write(rec('i4'));
    await fourth;
    expect(batches).toEqual([2, 1, 1]);
    store.close();
  });

  it('rejects every write of a failed batch and keeps working afterwards', async () => {
    const store = Store.open(path.join(tempDir(), 'b.db'));
    const w = new AuditWriter(store.audit);
    await w.write(rec('dup'));
    const results = await Promise.allSettled([w.write(rec('x')), w.write(rec('dup'))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(store.audit.get('x')).toBeNull();
    await w.write(rec('y'));
    expect(store.audit.get('y')).not.toBeNull();
    store.close();
  });
});
