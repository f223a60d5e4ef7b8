// Crash consistency of the audit store: a child process appends, ingests and indexes in a loop
// and is killed with SIGKILL at arbitrary moments (in a journal write, an ingest or index batch,
// a journal truncation, a WAL checkpoint in its worker thread, between them). After each reopen,
// every record the child reported committed is there with the seq it was given, no seq is handed
// out twice, the index is exactly what the records derive, and every record is found by vm,
// policy, decision, time and id.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../runtime/store/store.ts';
import { crashRecord } from './helpers/audit-appender.ts';
import { REPO_ROOT } from './helpers/daemon-process.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { spawnChild } from '../support/processes/children.ts';

afterAll(removeTempDirs);

const APPENDER = path.join(REPO_ROOT, 'test/daemon/helpers/audit-appender.ts');
const BOOTSTRAP = path.join(REPO_ROOT, 'runtime/bootstrap/register.mjs');

/**
 * Runs the appender until it reported `atLeast` ids plus a random number more (so the kill lands
 * at an arbitrary point of its loop), then SIGKILLs it. Returns its `id seq` lines. Counted in
 * lines, not time: a timer fires late on a loaded machine, and meanwhile the child runs on.
 */
function appendUntilKilled(file: string, run: number, durability: string, atLeast: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(process.execPath, ['--import', BOOTSTRAP, APPENDER, file, String(run), durability], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killAt = atLeast + Math.floor(Math.random() * (atLeast / 10));
    const chunks: Buffer[] = [];
    let lines = 0;
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      chunks.push(d);
      if (lines > killAt) return; // killing
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
      if (lines > killAt) child.kill('SIGKILL');
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // 'close', not 'exit': every line the child wrote has been read by then.
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`appender exited (${code}, ${signal}): ${err}`));
      // Only complete lines were reported; the last may be cut.
      const out = Buffer.concat(chunks).toString().split('\n').slice(0, -1);
      expect(out[0]).toBe('open');
      resolve(out.slice(1));
    });
  });
}

/**
 * What a kill left behind, read without opening a Store (which would recover): journal frames
 * beyond the ingester's mark (the frames
 * parsed here by hand: u32 length, u32 crc32, JSON { seq, record }; a torn tail ends them).
 */
function leftBehind(file: string): { uningested: number } {
  const db = new Database(file);
  try {
    const mark = db.prepare('SELECT ingested_through FROM audit_ingester').pluck().get() as number;
    let uningested = 0;
    // Durability 'full' has a second segment.
    for (const segment of [`${file}-audit-journal`, `${file}-audit-journal-b`])
      if (fs.existsSync(segment)) uningested += uningestedIn(fs.readFileSync(segment), mark);
    return { uningested };
  } finally {
    db.close();
  }
}

function uningestedIn(journal: Buffer, mark: number): number {
  let uningested = 0;
  for (let off = 0; off + 8 <= journal.length; ) {
    const n = journal.readUInt32LE(off);
    if (off + 8 + n > journal.length) break;
    let seq: number;
    try {
      seq = (JSON.parse(journal.subarray(off + 8, off + 8 + n).toString()) as { seq: number }).seq;
    } catch {
      break;
    }
    if (seq > mark) uningested++;
    off += 8 + n;
  }
  return uningested;
}

function checkStore(file: string, reported: ReadonlyMap<string, { run: number; i: number; seq: number }>): void {
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
    for (let k = 1; k < order.length; k++)
      expect(order[k]![0] * 1e9 + order[k]![1]).toBeGreaterThan(order[k - 1]![0] * 1e9 + order[k - 1]![1]);
    const ids = (q: Parameters<typeof s.audit.query>[0]): Set<string> =>
      new Set(s.audit.query(q).records.map((r) => r.decisionId));
    const byVm = new Map(['vm-0', 'uuid-1', 'vm-2'].map((vm) => [vm, ids({ limit: 1_000_000, order: 'asc', vm })]));
    const byPolicy = new Map(['pa', 'pb'].map((p) => [p, ids({ limit: 1_000_000, order: 'asc', policy: p })]));
    const denied = ids({ limit: 1_000_000, order: 'desc', decision: 'deny' });
    expect(reported.size).toBeGreaterThan(0);
    for (const [id, { run, i, seq }] of reported) {
      const expected = crashRecord(run, i);
      expect(s.audit.get(id)).toMatchObject({ ...expected, seq });
      if (expected.vm)
        expect(byVm.get(expected.vm.name)?.has(id) ?? byVm.get(expected.vm.uuid)!.has(id), id).toBe(true);
      if (expected.policy) expect(byPolicy.get(expected.policy.name)!.has(id), id).toBe(true);
      expect(denied.has(id), id).toBe(expected.decision === 'deny');
    }
    // By time, for a sample (one query each).
    for (const [id, { run, i }] of [...reported].filter((_, k) => k % 97 === 0)) {
      const t = Date.parse(crashRecord(run, i).time);
      expect(
        s.audit.query({ limit: 10, order: 'asc', sinceMs: t, untilMs: t + 1 }).records.map((r) => r.decisionId),
      ).toEqual([id]);
    }
  } finally {
    s.close();
  }
}

describe('audit store under kill -9', () => {
  it.for(['normal', 'full'])(
    'keeps every reported record, and a consistent index, across repeated SIGKILLs (durability %s)',
    { timeout: 120_000 },
    async (durability, { signal }) => {
      const file = path.join(tempDir(), 'state', 'capgate.db');
      const reported = new Map<string, { run: number; i: number; seq: number }>();
      let uningestedAtKill = 0;
      let topSeq = 0;
      for (let run = 1; run <= 4; run++) {
        // A test that timed out goes on in the background: it must not start another appender.
        signal.throwIfAborted();
        const lines = await appendUntilKilled(file, run, durability, durability === 'full' ? 300 : 3000);
        for (const line of lines) {
          const [id, seq] = line.split(' ') as [string, string];
          // Acknowledged seqs increase, and continue above every seq of the runs before (none reused).
          expect(Number(seq), line).toBeGreaterThan(topSeq);
          topSeq = Number(seq);
          reported.set(id, { run, i: Number(id.split('-')[1]), seq: topSeq });
        }
        // The database file holds only what checkpoints copied back (the daemon's connection never
        // checkpoints before it closes): the checkpoint worker ran while the kills landed.
        if (run === 1) expect(fs.statSync(file).size).toBeGreaterThan(4096);
        const left = leftBehind(file);
        uningestedAtKill += left.uningested;
        // Checked (reopened, then closed cleanly) after odd runs; after even runs the next child
        // itself catches up the index the killed one left behind.
        if (run % 2 === 1) checkStore(file, reported);
      }
      checkStore(file, reported);
      // The kills left acknowledged records only in the journal, so recovery was exercised (and
      // the index catch-up, since recovered records are indexed from their JSON).
      expect(uningestedAtKill).toBeGreaterThan(0);
    },
  );
});
