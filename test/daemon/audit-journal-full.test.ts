// The audit journal with durability 'full' on real files and a real database: a record is
// acknowledged only once an fdatasync of the journal returned (the fdatasync and the WAL sync are
// held or failed through the journal's seam, then run for real); a failed fdatasync drops what
// it did not make durable; a segment is emptied only once the WAL holding its ingest was synced,
// while appends go on in the other one; and either durability recovers what the other left.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditWriter } from '../../runtime/server/audit/audit-writer.ts';
import { Store } from '../../runtime/store/store.ts';
import type { NewAuditRecord } from '../../runtime/store/audit-store.ts';
import type { JournalIo } from '../../runtime/store/audit-journal.ts';
import { auditRecord } from './helpers/audit-records.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);

const rec = (i: number): NewAuditRecord => auditRecord(i, {}, 'f');
const newDbFile = (): string => path.join(tempDir(), 'state', 'capgate.db');
const journalA = (db: string): string => `${db}-audit-journal`;
const journalB = (db: string): string => `${db}-audit-journal-b`;
const size = (file: string): number => (fs.existsSync(file) ? fs.statSync(file).size : 0);
const idsOf = (s: Store): string[] => s.audit.query({ limit: 10_000, order: 'asc' }).records.map((r) => r.decisionId);

/** The journal's syncs, each held until the test releases it (then run for real) or fails it. */
function heldSyncs(): {
  io: Partial<JournalIo>;
  data: Array<{ release(): void; fail(err: Error): void }>;
  wal: Array<{ file: string; release(): void; fail(err: Error): void }>;
} {
  const data: Array<{ release(): void; fail(err: Error): void }> = [];
  const wal: Array<{ file: string; release(): void; fail(err: Error): void }> = [];
  return {
    data,
    wal,
    io: {
      fdatasync: (fd, done) =>
        data.push({ release: () => fs.fdatasync(fd, (err) => done(err)), fail: (err) => done(err) }),
      syncFile: (file, done) => {
        // The state directory's sync (a segment was created) runs at once; the WAL's is held.
        if (!file.endsWith('-wal'))
          return fs.open(file, 'r', (e, fd) => (e ? done(e) : fs.fsync(fd, (s) => fs.close(fd, () => done(s)))));
        wal.push({
          file,
          release: () =>
            fs.open(file, 'r', (e, fd) => (e ? done(e) : fs.fdatasync(fd, (s) => fs.close(fd, () => done(s))))),
          fail: (err) => done(err),
        });
      },
    },
  };
}

/** Resolves after the thread pool's callbacks queued by now have run (a few turns). */
const turns = async (n = 20): Promise<void> => {
  for (let k = 0; k < n; k++) await new Promise((r) => setImmediate(r));
};

const syncOnce = (s: Store): Promise<Error | null> => new Promise((resolve) => s.audit.sync(resolve));

describe("audit journal, durability 'full'", () => {
  it('acknowledges a record only once its fdatasync returned; reads and the database see it only then', async () => {
    const file = newDbFile();
    const held = heldSyncs();
    const s = Store.open(file, 'full', { journalIo: held.io });
    expect(fs.statSync(journalA(file)).mode & 0o777).toBe(0o600);
    expect(fs.statSync(journalB(file)).mode & 0o777).toBe(0o600);
    expect(s.audit.append([rec(1), rec(2)])).toEqual([1, 2]);
    expect(size(journalA(file)) + size(journalB(file))).toBeGreaterThan(0); // written on this thread
    let result: Error | null | undefined;
    s.audit.sync((err) => (result = err));
    expect(held.data).toHaveLength(1);
    expect(() => s.audit.sync(() => {})).toThrow(/already under way/);
    s.audit.append([rec(3)]); // waits for the next sync
    await turns();
    expect(result).toBeUndefined(); // held: not acknowledged
    expect(s.audit.count()).toBe(0); // not read, not ingested
    held.data[0]!.release();
    while (result === undefined) await turns(1);
    expect(result).toBeNull();
    expect(idsOf(s)).toEqual(['f-1', 'f-2']);
    const second = syncOnce(s);
    held.data[1]!.release();
    expect(await second).toBeNull();
    expect(idsOf(s)).toEqual(['f-1', 'f-2', 'f-3']);
    // The connection stays synchronous=FULL (2) for the admin's writes; only the audit's own
    // transactions ran with NORMAL.
    expect(s.db.pragma('synchronous', { simple: true })).toBe(2);
    s.close();
  });

  it('a failed fdatasync drops every record it did not make durable, gives their seqs back, and appends go on', async () => {
    const file = newDbFile();
    const held = heldSyncs();
    const s = Store.open(file, 'full', { journalIo: held.io });
    s.audit.append([rec(1)]);
    const first = syncOnce(s);
    held.data[0]!.release();
    expect(await first).toBeNull();
    const durable = size(journalA(file)) + size(journalB(file));
    s.audit.append([rec(2), rec(3)]);
    const failing = syncOnce(s);
    s.audit.append([rec(4)]); // written while the failing sync runs: not durable either
    held.data[1]!.fail(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    expect(await failing).toMatchObject({ code: 'EIO' });
    expect(size(journalA(file)) + size(journalB(file))).toBe(durable); // cut back
    expect(s.audit.append([rec(5)])).toEqual([2]);
    const next = syncOnce(s);
    held.data[2]!.release();
    expect(await next).toBeNull();
    expect(idsOf(s)).toEqual(['f-1', 'f-5']);
    s.abandon(); // a kill -9: the dropped records do not come back
    const s2 = Store.open(file, 'full');
    expect(idsOf(s2)).toEqual(['f-1', 'f-5']);
    expect(s2.audit.append([rec(6)])).toEqual([3]);
    await s2.audit.syncNow();
    s2.close();
  });

  it('retires a full segment: appends go to the other one, and it is emptied only once the WAL is synced', async () => {
    const file = newDbFile();
    const held = heldSyncs();
    const s = Store.open(file, 'full', { journalIo: held.io, journalTruncateBytes: 4096 });
    let i = 1;
    const appendSynced = async (): Promise<void> => {
      s.audit.append([rec(i++)]);
      const p = syncOnce(s);
      held.data.at(-1)!.release();
      expect(await p).toBeNull();
    };
    while (size(journalA(file)) + size(journalB(file)) <= 4096) await appendSynced();
    const full = size(journalA(file)) > 0 ? journalA(file) : journalB(file);
    const other = full === journalA(file) ? journalB(file) : journalA(file);
    expect(size(other)).toBe(0);
    s.audit.ingestSome(10_000); // everything ingested: the segment is retired, the WAL sync starts
    expect(held.wal).toHaveLength(1);
    expect(held.wal[0]!.file).toBe(`${file}-wal`);
    await appendSynced(); // into the other segment meanwhile
    expect(size(other)).toBeGreaterThan(0);
    expect(size(full)).toBeGreaterThan(4096); // kept: its ingest is not yet on disk
    // A kill now loses nothing: both segments are read, seqs decide.
    const before = i - 1;
    held.wal[0]!.release();
    while (size(full) > 0) await turns(1);
    expect(size(other)).toBeGreaterThan(0);
    s.abandon();
    const s2 = Store.open(file, 'full');
    expect(idsOf(s2)).toEqual(Array.from({ length: before }, (_, k) => `f-${k + 1}`));
    s2.close();
    // A clean stop (a complete checkpoint) leaves both segments empty.
    expect(size(journalA(file)) + size(journalB(file))).toBe(0);
  });

  it('keeps the retired segment when the WAL sync fails, and says so', async () => {
    const file = newDbFile();
    const held = heldSyncs();
    const errors: Error[] = [];
    const s = Store.open(file, 'full', {
      journalIo: held.io,
      journalTruncateBytes: 0,
      onJournalRetireError: (err) => errors.push(err),
    });
    s.audit.append([rec(1)]);
    const p = syncOnce(s);
    held.data[0]!.release();
    expect(await p).toBeNull();
    s.audit.ingestSome(10);
    const kept = size(journalA(file)) + size(journalB(file));
    expect(kept).toBeGreaterThan(0);
    held.wal[0]!.fail(new Error('EIO: i/o error, fdatasync'));
    await turns();
    expect(errors.map((e) => e.message)).toEqual(['EIO: i/o error, fdatasync']);
    expect(size(journalA(file)) + size(journalB(file))).toBe(kept);
    s.abandon();
    const s2 = Store.open(file, 'full');
    expect(idsOf(s2)).toEqual(['f-1']);
    s2.close();
  });

  it("recovers what a 'normal' run left, and 'normal' recovers both segments a 'full' run left", async () => {
    const file = newDbFile();
    const n = Store.open(file);
    n.audit.append([rec(1), rec(2)]);
    n.abandon();
    const f = Store.open(file, 'full', { journalTruncateBytes: 0 });
    expect(f.audit.recovery.ingested).toBe(2);
    f.audit.append([rec(3)]);
    await f.audit.syncNow();
    f.abandon(); // record 3 only in a segment, 1 and 2 perhaps in the other
    const n2 = Store.open(file);
    expect(fs.existsSync(journalB(file))).toBe(false);
    expect(idsOf(n2)).toEqual(['f-1', 'f-2', 'f-3']);
    expect(n2.audit.append([rec(4)])).toEqual([4]);
    n2.close();
  });
});

describe("audit journal, durability 'full', under writes that never pause", () => {
  it('stays bounded: a segment is retired while the next records are still being synced', async () => {
    const file = newDbFile();
    const threshold = 16 * 1024;
    const s = Store.open(file, 'full', { journalTruncateBytes: threshold });
    const w = new AuditWriter(s.audit, { holdMs: 0, indexBatch: 1, indexIdleMs: 1 });
    let maxBytes = 0;
    let rotations = 0;
    let activeWasA = true;
    // Two groups of writes always overlap: an fdatasync is under way at nearly every moment.
    let previous: Promise<unknown> = Promise.resolve();
    for (let g = 0; g < 150; g++) {
      const group = Promise.all(Array.from({ length: 10 }, (_, k) => w.write(rec(g * 10 + k))));
      await previous;
      previous = group;
      await new Promise((r) => setImmediate(r));
      const [a, b] = [size(journalA(file)), size(journalB(file))];
      maxBytes = Math.max(maxBytes, a + b);
      if (a > 0 && b === 0 && !activeWasA) rotations++, (activeWasA = true);
      if (b > 0 && a === 0 && activeWasA) rotations++, (activeWasA = false);
    }
    await previous;
    await w.close();
    expect(s.audit.count()).toBe(1500);
    expect(rotations).toBeGreaterThan(3); // ~1 MB of records through a 16 KiB journal
    expect(maxBytes).toBeLessThan(8 * threshold);
    s.close();
  });
});
