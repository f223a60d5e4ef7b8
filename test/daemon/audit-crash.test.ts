// Crash consistency of the audit store: a child process appends and indexes in a loop and is
// killed with SIGKILL at arbitrary moments (in an append, in an index batch, between them).
// After each reopen, every record the child reported committed is there, the index is exactly
// what the records derive, and every record is found by vm, policy, decision, time and id.
import { spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../runtime/store/store.ts';
import { crashRecord } from './helpers/audit-appender.ts';
import { REPO_ROOT } from './helpers/daemon-process.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);

const APPENDER = path.join(REPO_ROOT, 'test/daemon/helpers/audit-appender.ts');
const BOOTSTRAP = path.join(REPO_ROOT, 'runtime/bootstrap/register.mjs');

/** Runs the appender until it reported `atLeast` ids, plus a random extra moment, then SIGKILLs it. */
function appendUntilKilled(file: string, run: number, durability: string, atLeast: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', BOOTSTRAP, APPENDER, file, String(run), durability], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killing = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!killing && out.split('\n').length > atLeast) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), Math.random() * 30);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`appender exited (${code}, ${signal}): ${err}`));
      // Only complete lines were reported; the last may be cut.
      const lines = out.split('\n').slice(0, -1);
      expect(lines[0]).toBe('open');
      resolve(lines.slice(1));
    });
  });
}

/** Committed records beyond the index cursor, read without opening a Store (which would catch up). */
function unindexed(file: string): number {
  const db = new Database(file);
  try {
    return db.prepare('SELECT count(*) FROM audit_log WHERE seq > (SELECT indexed_through FROM audit_indexer)').pluck().get() as number;
  } finally {
    db.close();
  }
}

function checkStore(file: string, reported: ReadonlyMap<string, { run: number; i: number }>): void {
  const s = Store.open(file);
  try {
    expect(s.integrityCheck()).toBe('ok');
    const cursor = s.db.prepare('SELECT indexed_through FROM audit_indexer').pluck().get() as number;
    const logTop = s.db.prepare('SELECT max(seq) FROM audit_log').pluck().get() as number;
    expect(cursor).toBe(logTop); // caught up at open
    const index = s.db.prepare('SELECT * FROM audit_index ORDER BY seq').all();
    expect(index).toHaveLength(s.db.prepare('SELECT count(*) FROM audit_log').pluck().get() as number);
    s.audit.rebuildIndex();
    expect(s.db.prepare('SELECT * FROM audit_index ORDER BY seq').all()).toEqual(index);

    const all = s.audit.query({ limit: 1_000_000, order: 'asc' }).records;
    // seq follows the order of generation, across runs (no seq reused after a crash).
    const order = all.map((r) => r.decisionId.slice(1).split('-').map(Number) as [number, number]);
    for (let k = 1; k < order.length; k++) expect(order[k]![0] * 1e9 + order[k]![1]).toBeGreaterThan(order[k - 1]![0] * 1e9 + order[k - 1]![1]);
    const ids = (q: Parameters<typeof s.audit.query>[0]): Set<string> => new Set(s.audit.query(q).records.map((r) => r.decisionId));
    const byVm = new Map(['vm-0', 'uuid-1', 'vm-2'].map((vm) => [vm, ids({ limit: 1_000_000, order: 'asc', vm })]));
    const byPolicy = new Map(['pa', 'pb'].map((p) => [p, ids({ limit: 1_000_000, order: 'asc', policy: p })]));
    const denied = ids({ limit: 1_000_000, order: 'desc', decision: 'deny' });
    expect(reported.size).toBeGreaterThan(0);
    for (const [id, { run, i }] of reported) {
      const expected = crashRecord(run, i);
      expect(s.audit.get(id)).toMatchObject(expected);
      if (expected.vm) expect(byVm.get(expected.vm.name)?.has(id) ?? byVm.get(expected.vm.uuid)!.has(id), id).toBe(true);
      if (expected.policy) expect(byPolicy.get(expected.policy.name)!.has(id), id).toBe(true);
      expect(denied.has(id), id).toBe(expected.decision === 'deny');
    }
    // By time, for a sample (one query each).
    for (const [id, { run, i }] of [...reported].filter((_, k) => k % 97 === 0)) {
      const t = Date.parse(crashRecord(run, i).time);
      expect(s.audit.query({ limit: 10, order: 'asc', sinceMs: t, untilMs: t + 1 }).records.map((r) => r.decisionId)).toEqual([id]);
    }
  } finally {
    s.close();
  }
}

describe('audit store under kill -9', () => {
  it.each(['normal', 'full'])('keeps every reported record, and a consistent index, across repeated SIGKILLs (durability %s)', async (durability) => {
    const file = path.join(tempDir(), 'state', 'capgate.db');
    const reported = new Map<string, { run: number; i: number }>();
    let unindexedAtKill = 0;
    for (let run = 1; run <= 4; run++) {
      const ids = await appendUntilKilled(file, run, durability, durability === 'full' ? 300 : 3000);
      for (const id of ids) reported.set(id, { run, i: Number(id.split('-')[1]) });
      unindexedAtKill += unindexed(file);
      // Checked (reopened, then closed cleanly) after odd runs; after even runs the next child
      // itself catches up the index the killed one left behind.
      if (run % 2 === 1) checkStore(file, reported);
    }
    checkStore(file, reported);
    // The kills left records unindexed, so the catch-up from the JSON at open was exercised.
    expect(unindexedAtKill).toBeGreaterThan(0);
  }, 120_000);
});
