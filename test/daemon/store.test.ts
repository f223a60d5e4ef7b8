// The SQLite store on a real database file: migrations, revisions, bindings with rollback,
// VMs, audit query and retention.
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../runtime/store/store.ts';
import { MIGRATIONS, migrate, MigrationError } from '../../runtime/store/migrations.ts';
import type { NewAuditRecord } from '../../runtime/store/audit-store.ts';
import { DEFAULT_LIMITS } from '../../runtime/engine/limits.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);

const info = { imports: ['capgate:policy/host@1.0.0'], exports: ['evaluate'], hostFunctions: ['log'], wit: 'world policy {}', limits: { ...DEFAULT_LIMITS } };
const rev = (policy: string, byte: number) => ({ policy, description: `d${byte}`, bytes: new Uint8Array([0, 97, 115, 109, byte]), sha256: `sha-${byte}`, info });
const openStore = (): Store => Store.open(path.join(tempDir(), 'state', 'capgate.db'));

function auditRecord(i: number, over: Partial<NewAuditRecord> = {}): NewAuditRecord {
  return {
    decisionId: `d-${i}`,
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    requester: { pid: 100 + i, uid: 0, gid: 0 },
    vm: { uuid: i % 2 ? 'uuid-a' : 'uuid-b', name: i % 2 ? 'vm-a' : 'vm-b', id: 1, labels: [] },
    operation: 'set-memlock',
    targetPid: 200,
    bytes: '4096',
    policy: { name: i % 3 ? 'p1' : 'p2', revision: 1, sha256: 'x' },
    decision: i % 4 ? 'allow' : 'deny',
    reason: '',
    capabilityCalls: [],
    logs: [],
    fuelUsed: 10,
    durationUs: 5,
    totalUs: 9,
    ...over,
  };
}

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
    const broken = [...MIGRATIONS, { version: 2, description: 'broken', sql: 'CREATE TABLE t2 (x INTEGER); THIS IS NOT SQL;' }];
    expect(() => migrate(db, broken)).toThrow();
    expect(db.pragma('user_version', { simple: true })).toBe(1);
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
    expect(second).toMatchObject({ created: true, revision: { revision: 2, sha256: 'sha-2', size: 5, description: 'd2' } });
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
    expect(s.bindings.bind('set-memlock', 'a', 1)).toMatchObject({ ok: true, binding: { policy: 'a', revision: 1, sha256: 'sha-1' }, previous: null });
    expect(s.bindings.bind('set-memlock', 'a', 2)).toMatchObject({ ok: true, binding: { revision: 2 }, previous: { revision: 1 } });
    expect(s.policies.delete('a', 2)).toBe('bound');
    expect(s.policies.get('a', 2)?.boundTo).toEqual(['set-memlock']);
    expect(s.bindings.rollback('set-memlock')).toMatchObject({ ok: true, binding: { revision: 1 }, previous: { revision: 2 } });
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
    const vm = { identity: { uuid: 'u1', name: 'vm-1', id: 1, labels: [['k', 'v']] as Array<[string, string]> }, anchor: { rootPid: 10, rootStartTime: 5 } };
    expect(s.vms.register(vm)).toMatchObject({ ok: true, vm: { identity: { uuid: 'u1' } } });
    expect(s.vms.register(vm)).toMatchObject({ ok: false, reason: 'exists' });
    expect(s.vms.register({ ...vm, identity: { ...vm.identity, uuid: 'u2' } })).toMatchObject({ ok: false, reason: 'name-taken' });
    expect(s.vms.update('u1', { ...vm, anchor: { cgroup: '/x' } })).toMatchObject({ ok: true, vm: { anchor: { cgroup: '/x' } } });
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
    const ranged = s.audit.query({ limit: 100, order: 'asc', sinceMs: Date.UTC(2026, 0, 1, 0, 0, 10), untilMs: Date.UTC(2026, 0, 1, 0, 0, 20) }).records;
    expect(ranged.map((r) => r.decisionId)).toEqual(Array.from({ length: 10 }, (_, i) => `d-${i + 10}`));
    expect(s.audit.get('d-7')).toMatchObject({ decisionId: 'd-7', requester: { pid: 107 } });
    s.close();
  });

  it('commits a batch all or nothing', () => {
    const s = openStore();
    s.audit.append([auditRecord(1)]);
    expect(() => s.audit.append([auditRecord(2), auditRecord(1)])).toThrow(/UNIQUE/);
    expect(s.audit.count()).toBe(1);
    s.close();
  });

  it('applies retention by age and by count', () => {
    const s = openStore();
    const now = Date.UTC(2026, 0, 10);
    s.audit.append(Array.from({ length: 10 }, (_, i) => auditRecord(i, { time: new Date(now - (10 - i) * 86_400_000).toISOString() })));
    expect(s.audit.prune({ maxAgeMs: 5.5 * 86_400_000 }, now)).toBe(5);
    expect(s.audit.prune({ maxRecords: 2 }, now)).toBe(3);
    expect(s.audit.query({ limit: 10, order: 'asc' }).records.map((r) => r.decisionId)).toEqual(['d-8', 'd-9']);
    s.close();
  });
});
