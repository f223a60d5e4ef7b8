// The SQLite store on a real database file: migrations, revisions, bindings with rollback,
// VMs, audit query and retention.
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../runtime/store/store.ts';
import { lockFileOf, StateLockedError } from '../../runtime/store/state-lock.ts';
import { MIGRATIONS, migrate, MigrationError } from '../../runtime/store/migrations.ts';
import { DEFAULT_LIMITS } from '../../runtime/engine/limits.ts';
import { AUDIT_RECORD_SCHEMA_VERSION } from '../../runtime/wire/index.ts';
import { auditRecord } from './helpers/audit-records.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { killChildren, spawnChild } from '../support/processes/children.ts';
import { ChildOutput } from '../support/wait.ts';

afterAll(removeTempDirs);

const info = {
  imports: ['capgate:policy/host@1.0.0'],
  exports: ['evaluate'],
  hostFunctions: ['log'],
  wit: 'world policy {}',
  limits: { ...DEFAULT_LIMITS },
};
const rev = (policy: string, byte: number) => ({
  policy,
  description: `d${byte}`,
  bytes: new Uint8Array([0, 97, 115, 109, byte]),
  sha256: `sha-${byte}`,
  info,
});
const openStore = (): Store => Store.open(path.join(tempDir(), 'state', 'capgate.db'));

describe('migrations', () => {
  it('sets user_version, is idempotent on reopen, and refuses a newer schema', () => {
    const file = path.join(tempDir(), 'm.db');
    const db = new Database(file);
    expect(migrate(db)).toBe(MIGRATIONS.length);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(migrate(db)).toBe(MIGRATIONS.length);
    db.pragma('user_version = 99');
    expect(() => migrate(db)).toThrow(MigrationError);
    expect(() => migrate(db)).toThrow(/newer than this capgate knows/);
    db.close();
  });

  it('rolls a failing migration back entirely', () => {
    const db = new Database(path.join(tempDir(), 'f.db'));
    const broken = [
      ...MIGRATIONS,
      { version: MIGRATIONS.length + 1, description: 'broken', sql: 'CREATE TABLE t2 (x INTEGER); THIS IS NOT SQL;' },
    ];
    expect(() => migrate(db, broken)).toThrow();
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 't2'").get()).toBeUndefined();
    db.close();
  });

  it('opens in WAL mode', () => {
    const s = openStore();
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.integrityCheck()).toBe('ok');
    s.close();
  });
});

describe('policies and bindings', () => {
  it('numbers revisions per policy, never reuses a number, and dedups identical latest bytes', () => {
    const s = openStore();
    expect(s.policies.insert(rev('a', 1)).revision.revision).toBe(1);
    const second = s.policies.insert(rev('a', 2));
    expect(second).toMatchObject({
      created: true,
      revision: { revision: 2, sha256: 'sha-2', size: 5, description: 'd2' },
    });
    expect(s.policies.insert(rev('a', 2))).toMatchObject({ created: false, revision: { revision: 2 } });
    expect(s.policies.insert(rev('b', 1)).revision.revision).toBe(1);
    expect(s.policies.delete('a', 2)).toBe('deleted');
    expect(s.policies.insert(rev('a', 3)).revision.revision).toBe(3);
    expect(Array.from(s.policies.bytes('a', 1)!)).toEqual([0, 97, 115, 109, 1]);
    expect(s.policies.get('a', 2)).toBeNull();
    expect([...s.policies.list().keys()]).toEqual(['a', 'b']);
    s.close();
  });

  it('binds, refuses to delete a bound revision, and rolls back like a stack', () => {
    const s = openStore();
    s.policies.insert(rev('a', 1));
    s.policies.insert(rev('a', 2));
    expect(s.bindings.bind('set-memlock', 'a', 9)).toMatchObject({ ok: false, reason: 'revision-not-found' });
    expect(s.bindings.bind('set-memlock', 'a', 1)).toMatchObject({
      ok: true,
      binding: { policy: 'a', revision: 1, sha256: 'sha-1' },
      previous: null,
    });
    expect(s.bindings.bind('set-memlock', 'a', 2)).toMatchObject({
      ok: true,
      binding: { revision: 2 },
      previous: { revision: 1 },
    });
    expect(s.policies.delete('a', 2)).toBe('bound');
    expect(s.policies.get('a', 2)?.boundTo).toEqual(['set-memlock']);
    expect(s.bindings.rollback('set-memlock')).toMatchObject({
      ok: true,
      binding: { revision: 1 },
      previous: { revision: 2 },
    });
    expect(s.bindings.rollback('set-memlock')).toMatchObject({ ok: false, reason: 'nothing-to-roll-back' });
    expect(s.bindings.currentFor('set-memlock')?.revision).toBe(1);
    // unbind is part of the history too: rollback restores what was bound before it.
    expect(s.bindings.unbind('set-memlock')).toMatchObject({ ok: true, binding: null, previous: { revision: 1 } });
    expect(s.bindings.currentFor('set-memlock')).toBeNull();
    expect(s.bindings.rollback('set-memlock')).toMatchObject({ ok: true, binding: { revision: 1 } });
    const h = s.bindings.history('set-memlock');
    expect(h.map((e) => [e.action, e.binding?.revision ?? null, e.rolledBackAt !== undefined])).toEqual([
      ['unbind', null, true],
      ['bind', 2, true],
      ['bind', 1, false],
    ]);
    s.close();
  });

  it('refuses to roll back to a deleted revision', () => {
    const s = openStore();
    s.policies.insert(rev('a', 1));
    s.policies.insert(rev('a', 2));
    s.bindings.bind('set-memlock', 'a', 1);
    s.bindings.bind('set-memlock', 'a', 2);
    expect(s.policies.delete('a', 1)).toBe('deleted');
    expect(s.bindings.rollback('set-memlock')).toMatchObject({ ok: false, reason: 'revision-deleted' });
    expect(s.bindings.currentFor('set-memlock')?.revision).toBe(2);
    s.close();
  });
});

describe('VM registry', () => {
  it('registers, refuses duplicates by uuid and name, updates and unregisters', () => {
    const s = openStore();
    const vm = {
      identity: { uuid: 'u1', name: 'vm-1', id: 1, labels: [['k', 'v']] as Array<[string, string]> },
      anchor: { rootPid: 10, rootStartTime: 5 },
    };
    expect(s.vms.register(vm)).toMatchObject({ ok: true, vm: { identity: { uuid: 'u1' } } });
    expect(s.vms.register(vm)).toMatchObject({ ok: false, reason: 'exists' });
    expect(s.vms.register({ ...vm, identity: { ...vm.identity, uuid: 'u2' } })).toMatchObject({
      ok: false,
      reason: 'name-taken',
    });
    expect(s.vms.update('u1', { ...vm, anchor: { cgroup: '/x' } })).toMatchObject({
      ok: true,
      vm: { anchor: { cgroup: '/x' } },
    });
    expect(s.vms.update('nope', vm)).toMatchObject({ ok: false, reason: 'not-found' });
    expect(s.vms.list()).toHaveLength(1);
    expect(s.vms.unregister('u1')).toBe(true);
    expect(s.vms.unregister('u1')).toBe(false);
    s.close();
  });
});

describe('audit', () => {
  it('filters by time, VM, decision and policy and pages with a cursor', () => {
    const s = openStore();
    s.audit.append(Array.from({ length: 40 }, (_, i) => auditRecord(i)));
    expect(s.audit.count()).toBe(40);
    const page1 = s.audit.query({ limit: 15, order: 'desc' });
    expect(page1.more).toBe(true);
    expect(page1.records[0]!.decisionId).toBe('d-39');
    const page2 = s.audit.query({ limit: 15, order: 'desc', afterSeq: page1.records.at(-1)!.seq });
    const page3 = s.audit.query({ limit: 15, order: 'desc', afterSeq: page2.records.at(-1)!.seq });
    expect(page3.more).toBe(false);
    const all = [...page1.records, ...page2.records, ...page3.records].map((r) => r.decisionId);
    expect(new Set(all).size).toBe(40);

    const vmA = s.audit.query({ limit: 100, order: 'asc', vm: 'vm-a' }).records;
    expect(vmA).toHaveLength(20);
    expect(vmA.every((r) => r.vm?.uuid === 'uuid-a')).toBe(true);
    expect(s.audit.query({ limit: 100, order: 'asc', vm: 'uuid-a' }).records).toHaveLength(20);
    expect(s.audit.query({ limit: 100, order: 'asc', decision: 'deny' }).records).toHaveLength(10);
    expect(s.audit.query({ limit: 100, order: 'asc', policy: 'p2' }).records).toHaveLength(14);
    const ranged = s.audit.query({
      limit: 100,
      order: 'asc',
      sinceMs: Date.UTC(2026, 0, 1, 0, 0, 10),
      untilMs: Date.UTC(2026, 0, 1, 0, 0, 20),
    }).records;
    expect(ranged.map((r) => r.decisionId)).toEqual(Array.from({ length: 10 }, (_, i) => `d-${i + 10}`));
    expect(s.audit.get('d-7')).toMatchObject({ decisionId: 'd-7', requester: { pid: 107 } });
    s.close();
  });

  it('commits a batch all or nothing', () => {
    const s = openStore();
    s.audit.append([auditRecord(1)]);
    // A record that cannot be indexed (its time is no date) fails the whole batch, as v1's NOT NULL did.
    expect(() => s.audit.append([auditRecord(2), auditRecord(3, { time: 'yesterday' })])).toThrow(
      /time is not an ISO 8601 date/,
    );
    // A record that cannot be serialised fails it too.
    expect(() => s.audit.append([auditRecord(4), auditRecord(5, { bytes: 5n as unknown as string })])).toThrow(
      /BigInt/,
    );
    expect(s.audit.count()).toBe(1);
    expect(s.audit.get('d-2')).toBeNull();
    expect(s.audit.get('d-4')).toBeNull();
    expect(s.db.prepare('SELECT count(*) FROM audit_log').pluck().get()).toBe(1);
    // The failed batches consumed no seq.
    s.audit.append([auditRecord(6)]);
    expect(s.audit.query({ limit: 10, order: 'asc' }).records.map((r) => r.seq)).toEqual([1, 2]);
    s.close();
  });

  it('applies retention by age and by count', () => {
    const s = openStore();
    const now = Date.UTC(2026, 0, 10);
    s.audit.append(
      Array.from({ length: 10 }, (_, i) =>
        auditRecord(i, { time: new Date(now - (10 - i) * 86_400_000).toISOString() }),
      ),
    );
    expect(s.audit.prune({ maxAgeMs: 5.5 * 86_400_000 }, now)).toBe(5);
    expect(s.audit.prune({ maxRecords: 2 }, now)).toBe(3);
    expect(s.audit.query({ limit: 10, order: 'asc' }).records.map((r) => r.decisionId)).toEqual(['d-8', 'd-9']);
    s.close();
  });
});

describe('audit log and its derived index', () => {
  const indexRows = (s: Store): unknown[] => s.db.prepare('SELECT * FROM audit_index ORDER BY seq').all();
  const logSeqs = (s: Store): number[] =>
    s.db.prepare('SELECT seq FROM audit_log ORDER BY seq').pluck().all() as number[];

  it('an append writes the log only; every read sees every committed record', () => {
    const s = openStore();
    s.audit.append(Array.from({ length: 12 }, (_, i) => auditRecord(i)));
    expect(s.audit.unindexed).toBe(12);
    expect(indexRows(s)).toEqual([]);
    expect(s.audit.get('d-5')).toMatchObject({ seq: 6, decisionId: 'd-5' });
    expect(s.audit.unindexed).toBe(0);
    s.audit.append([auditRecord(12)]);
    expect(s.audit.count()).toBe(13);
    s.audit.append([auditRecord(13)]);
    expect(s.audit.query({ limit: 100, order: 'desc', vm: 'vm-a' }).records[0]!.decisionId).toBe('d-13');
    s.audit.append([auditRecord(14)]);
    expect(s.audit.query({ limit: 100, order: 'asc', policy: 'p2' }).records.map((r) => r.decisionId)).toEqual([
      'd-0',
      'd-3',
      'd-6',
      'd-9',
      'd-12',
    ]);
    s.audit.append([auditRecord(16)]);
    expect(s.audit.query({ limit: 1, order: 'desc', decision: 'deny' }).records[0]!.decisionId).toBe('d-16');
    s.audit.append([auditRecord(17)]);
    expect(
      s.audit
        .query({ limit: 10, order: 'asc', sinceMs: Date.UTC(2026, 0, 1, 0, 0, 17) })
        .records.map((r) => r.decisionId),
    ).toEqual(['d-17']);
    s.close();
  });

  it('indexes in batches of the requested size, fed in memory; the same index is derived from the JSON', () => {
    const s = openStore();
    s.audit.append(Array.from({ length: 10 }, (_, i) => auditRecord(i)));
    s.audit.ingestSome(4);
    expect(s.audit.indexSome(4)).toBe(4);
    expect(s.audit.unindexed).toBe(6);
    s.audit.ingestSome(100);
    expect(s.audit.indexSome(100)).toBe(6);
    expect(s.audit.indexSome(100)).toBe(0);
    const fed = indexRows(s);
    expect(fed).toHaveLength(10);
    expect(fed[3]).toEqual({
      seq: 4,
      decision_id: 'd-3',
      time: Date.UTC(2026, 0, 1, 0, 0, 3),
      vm_uuid: 'uuid-a',
      vm_name: 'vm-a',
      policy: 'p2',
      decision: 'allow',
    });
    s.audit.rebuildIndex();
    expect(indexRows(s)).toEqual(fed);
    // A record without VM or policy indexes NULLs.
    s.audit.append([auditRecord(10, { vm: null, policy: null })]);
    s.audit.rebuildIndex();
    expect(indexRows(s).at(-1)).toMatchObject({ seq: 11, vm_uuid: null, vm_name: null, policy: null });
    s.close();
  });

  it('catches up at open from the JSON of records committed but never indexed', () => {
    const file = path.join(tempDir(), 'state', 'capgate.db');
    const s = Store.open(file);
    s.audit.append(Array.from({ length: 5 }, (_, i) => auditRecord(i)));
    s.audit.ingestSome(2);
    s.audit.indexSome(2);
    s.abandon(); // no Store.close(): as if the daemon died here
    const raw = new Database(file);
    expect(raw.prepare('SELECT indexed_through FROM audit_indexer').pluck().get()).toBe(2);
    expect(raw.prepare('SELECT count(*) FROM audit_index').pluck().get()).toBe(2);
    raw.close();
    const s2 = Store.open(file);
    expect(s2.db.prepare('SELECT indexed_through FROM audit_indexer').pluck().get()).toBe(5);
    expect(indexRows(s2)).toHaveLength(5);
    expect(s2.audit.query({ limit: 10, order: 'asc', vm: 'uuid-b' }).records.map((r) => r.decisionId)).toEqual([
      'd-0',
      'd-2',
      'd-4',
    ]);
    s2.close();
  });

  it('never hands out a seq again, even after retention deleted every record, across restarts', () => {
    const file = path.join(tempDir(), 'state', 'capgate.db');
    const now = Date.UTC(2026, 0, 10);
    let s = Store.open(file);
    s.audit.append(Array.from({ length: 6 }, (_, i) => auditRecord(i)));
    expect(s.audit.prune({ maxAgeMs: 1000 }, now)).toBe(6);
    expect(s.audit.count()).toBe(0);
    expect(logSeqs(s)).toEqual([]);
    s.close();
    s = Store.open(file);
    expect(s.audit.append([auditRecord(6)])).toEqual([7]);
    s.audit.ingestAll(); // from the journal into audit_log, which this test reads directly
    expect(logSeqs(s)).toEqual([7]);
    // Never indexed before the prune: prune indexes first, so the mark still covers them.
    s.audit.append([auditRecord(7), auditRecord(8)]);
    expect(s.audit.prune({ maxRecords: 0 }, now)).toBe(3);
    s.audit.append([auditRecord(9)]);
    expect(s.audit.query({ limit: 10, order: 'asc' }).records.map((r) => r.seq)).toEqual([10]);
    s.close();
  });

  it('applies retention to the log and the index together', () => {
    const s = openStore();
    const now = Date.UTC(2026, 0, 10);
    // Out of time order on purpose: retention by age follows time, not seq.
    const ages = [9, 2, 8, 1, 7, 3];
    s.audit.append(ages.map((d, i) => auditRecord(i, { time: new Date(now - d * 86_400_000).toISOString() })));
    expect(s.audit.prune({ maxAgeMs: 5 * 86_400_000 }, now)).toBe(3);
    expect(logSeqs(s)).toEqual([2, 4, 6]);
    expect((indexRows(s) as Array<{ seq: number }>).map((r) => r.seq)).toEqual([2, 4, 6]);
    s.audit.append([auditRecord(6, { time: new Date(now).toISOString() })]);
    expect(s.audit.prune({ maxRecords: 2 }, now)).toBe(2);
    expect(logSeqs(s)).toEqual([6, 7]);
    expect((indexRows(s) as Array<{ seq: number }>).map((r) => r.seq)).toEqual([6, 7]);
    s.close();
  });

  it('keeps a duplicate decisionId (the audit never drops a record); get returns the first', () => {
    // Not checked on the hot path: ids come from crypto.randomUUID in the daemon.
    const s = openStore();
    s.audit.append([auditRecord(1, { reason: 'first' })]);
    s.audit.append([auditRecord(1, { reason: 'second' })]);
    expect(s.audit.count()).toBe(2);
    expect(s.audit.get('d-1')).toMatchObject({ seq: 1, reason: 'first' });
    expect(s.audit.query({ limit: 10, order: 'asc' }).records.map((r) => [r.seq, r.decisionId, r.reason])).toEqual([
      [1, 'd-1', 'first'],
      [2, 'd-1', 'second'],
    ]);
    s.close();
  });

  it('keeps the v1 columns readable through the view `audit`, records not yet indexed included', () => {
    const s = openStore();
    s.audit.append([auditRecord(3)]);
    s.audit.ingestAll(); // out of the journal, into audit_log; not indexed
    expect(indexRows(s)).toEqual([]);
    expect(s.db.prepare('SELECT * FROM audit').all()).toEqual([
      {
        seq: 1,
        decision_id: 'd-3',
        time: Date.UTC(2026, 0, 1, 0, 0, 3),
        vm_uuid: 'uuid-a',
        vm_name: 'vm-a',
        policy: 'p2',
        decision: 'allow',
        doc: JSON.stringify({ schemaVersion: AUDIT_RECORD_SCHEMA_VERSION, ...auditRecord(3) }),
      },
    ]);
    s.close();
  });

  it('stamps every record with its schema version, and reads rows written before the field existed as version 1', () => {
    const s = openStore();
    s.audit.append([auditRecord(1)]);
    expect(s.audit.get('d-1')).toMatchObject({ schemaVersion: AUDIT_RECORD_SCHEMA_VERSION, seq: 1 });
    // A row as an older capgate wrote it: the same shape, no schemaVersion.
    s.audit.ingestAll();
    s.db.prepare('UPDATE audit_log SET doc = ? WHERE seq = 1').run(JSON.stringify(auditRecord(1)));
    const old = s.audit.get('d-1');
    expect(old).toMatchObject({ schemaVersion: 1, seq: 1, decisionId: 'd-1' });
    expect(s.audit.query({ limit: 10, order: 'asc' }).records[0]).toEqual(old);
    s.close();
  });

  it('migrates a v1 database with audit rows: every record stays queryable and its seqs stay used', () => {
    const file = path.join(tempDir(), 'capgate.db');
    const v1 = new Database(file);
    v1.pragma('journal_mode = WAL');
    expect(
      migrate(
        v1,
        MIGRATIONS.filter((m) => m.version === 1),
      ),
    ).toBe(1);
    const insert = v1.prepare(
      'INSERT INTO audit (decision_id, time, vm_uuid, vm_name, policy, decision, doc) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    for (let i = 0; i < 30; i++) {
      const r = auditRecord(i);
      insert.run(
        r.decisionId,
        Date.parse(r.time),
        r.vm?.uuid ?? null,
        r.vm?.name ?? null,
        r.policy?.name ?? null,
        r.decision,
        JSON.stringify(r),
      );
    }
    // v1 retention took the newest records too: AUTOINCREMENT remembers 30, max(seq) says 25.
    v1.prepare('DELETE FROM audit WHERE seq > 25').run();
    v1.close();

    const s = Store.open(file);
    expect(s.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(s.db.prepare("SELECT name FROM sqlite_master WHERE name = 'audit'").pluck().get()).toBe('audit');
    expect(s.db.prepare("SELECT type FROM sqlite_master WHERE name = 'audit'").pluck().get()).toBe('view');
    expect(s.audit.count()).toBe(25);
    expect(s.audit.get('d-7')).toMatchObject({ seq: 8, decisionId: 'd-7', requester: { pid: 107 } });
    expect(s.audit.query({ limit: 100, order: 'asc', vm: 'vm-a' }).records.map((r) => r.decisionId)).toEqual(
      Array.from({ length: 12 }, (_, i) => `d-${2 * i + 1}`),
    );
    expect(s.audit.query({ limit: 100, order: 'asc', policy: 'p2' }).records).toHaveLength(9);
    expect(s.audit.query({ limit: 100, order: 'asc', decision: 'deny' }).records).toHaveLength(7);
    expect(
      s.audit.query({ limit: 100, order: 'asc', sinceMs: Date.UTC(2026, 0, 1, 0, 0, 20) }).records.map((r) => r.seq),
    ).toEqual([21, 22, 23, 24, 25]);
    const page = s.audit.query({ limit: 10, order: 'desc', afterSeq: 20 });
    expect(page.records.map((r) => r.seq)).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10]);
    expect(page.more).toBe(true);
    s.audit.append([auditRecord(100)]);
    expect(s.audit.get('d-100')?.seq).toBe(31);
    expect(s.integrityCheck()).toBe('ok');
    s.close();
  });
});

describe('one daemon per state directory', () => {
  it('a second store on the same files is refused while the first is open, with who holds it', () => {
    const file = path.join(tempDir(), 'state', 'capgate.db');
    const first = Store.open(file);
    expect(() => Store.open(file)).toThrow(StateLockedError);
    expect(() => Store.open(file)).toThrow(
      new RegExp(`another capgate daemon \\(pid ${process.pid}\\) is using the state in`),
    );
    first.close();
    Store.open(file).close();
  });

  it('the lock dies with its process: kill -9 of the holder frees it', async () => {
    const file = path.join(tempDir(), 'state', 'capgate.db');
    Store.open(file).close(); // creates the files
    // A process that takes the same flock, says so, and then waits to be killed.
    // -o: only flock itself holds the lock (the command it runs does not inherit it).
    const holder = spawnChild('flock', ['-o', lockFileOf(file), 'sh', '-c', 'echo locked; exec sleep 300'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new ChildOutput(holder).until('locked\n', 'that it holds the lock');
    expect(() => Store.open(file)).toThrow(/another capgate daemon is using the state/);
    await killChildren('test'); // flock and its sleep, and waits for flock's exit
    Store.open(file).close();
  });
});
