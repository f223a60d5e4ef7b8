// The audit journal on real files (durability 'normal'): an append is one write to
// `<db>-audit-journal`, acknowledged records are visible to every read at once, a torn or bad
// tail is cut off at open, a failed write leaves the file as it was, and the journal is emptied
// once everything in it is in audit_log, without any seq ever being handed out twice.
// (Durability 'full': audit-journal-full.test.ts.)
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../runtime/store/store.ts';
import type { NewAuditRecord } from '../../runtime/store/audit-store.ts';
import { decodeFrames, encodeFrames, MAX_FRAME_PAYLOAD } from '../../runtime/store/audit-journal.ts';
import { auditRecord } from './helpers/audit-records.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { AUDIT_RECORD_SCHEMA_VERSION } from '../../runtime/wire/index.ts';

afterAll(removeTempDirs);

/** Policy p1 always: these tests do not filter by policy. */
const rec = (i: number, over: Partial<NewAuditRecord> = {}): NewAuditRecord =>
  auditRecord(i, { policy: { name: 'p1', revision: 1, sha256: 'x' }, ...over }, 'j');

const newDbFile = (): string => path.join(tempDir(), 'state', 'capgate.db');
const journalOf = (db: string): string => `${db}-audit-journal`;
const size = (file: string): number => fs.statSync(file).size;
const logRows = (s: Store): number => s.db.prepare('SELECT count(*) FROM audit_log').pluck().get() as number;
const seqsOf = (s: Store): number[] => s.audit.query({ limit: 1000, order: 'asc' }).records.map((r) => r.seq);
/** As if the daemon were killed: the database connection goes, nothing is flushed or emptied. */
const crash = (s: Store): void => s.abandon();

/** A frame built by hand (the format of audit-journal.ts): u32 length, u32 crc32, payload. */
function frame(payload: string, crc?: number): Buffer {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt32LE(crc ?? crc32(body), 4);
  return Buffer.concat([head, body]);
}

describe('audit journal', () => {
  it('an append is acknowledged once in the journal (mode 0600), and every read sees it at once', () => {
    const file = newDbFile();
    const s = Store.open(file);
    // synchronous=NORMAL (1): no fsync in a commit (the audit store's own statements keep it so).
    expect(s.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(fs.statSync(journalOf(file)).mode & 0o777).toBe(0o600);
    expect(s.audit.append([rec(1), rec(2)])).toEqual([1, 2]);
    expect(size(journalOf(file))).toBeGreaterThan(0);
    expect(logRows(s)).toBe(0); // not in the database yet
    expect(s.audit.get('j-2')).toMatchObject({ seq: 2, decisionId: 'j-2', requester: { pid: 102 } });
    expect(logRows(s)).toBe(2);
    expect(s.audit.append([rec(3)])).toEqual([3]);
    expect(s.audit.query({ limit: 10, order: 'desc', vm: 'vm-a' }).records.map((r) => r.decisionId)).toEqual([
      'j-3',
      'j-1',
    ]);
    expect(s.audit.append([rec(4)])).toEqual([4]);
    expect(s.audit.count()).toBe(4);
    expect(s.audit.append([rec(5, { time: new Date(Date.UTC(2020, 0, 1)).toISOString() })])).toEqual([5]);
    expect(s.audit.prune({ maxAgeMs: 86_400_000 }, Date.UTC(2026, 0, 1, 12))).toBe(1);
    expect(seqsOf(s)).toEqual([1, 2, 3, 4]);
    // A clean stop moves everything into the database and leaves the journal empty.
    expect(s.audit.append([rec(6)])).toEqual([6]);
    expect(s.db.pragma('synchronous', { simple: true })).toBe(1);
    s.close();
    expect(size(journalOf(file))).toBe(0);
    const raw = new Database(file, { readonly: true });
    expect(raw.prepare('SELECT seq FROM audit_log ORDER BY seq').pluck().all()).toEqual([1, 2, 3, 4, 6]);
    expect(raw.prepare('SELECT ingested_through FROM audit_ingester').pluck().get()).toBe(6);
    raw.close();
  });

  it('recovers acknowledged records a kill left in the journal, exactly once', () => {
    const file = newDbFile();
    const s = Store.open(file);
    s.audit.append([rec(1), rec(2), rec(3)]);
    s.audit.ingestSome(2); // 1 and 2 ingested (and indexed), 3 only in the journal
    s.audit.indexSome(2);
    s.audit.append([rec(4)]);
    crash(s);
    const s2 = Store.open(file);
    expect(s2.audit.recovery).toEqual({ ingested: 2, droppedBytes: 0 });
    expect(size(journalOf(file))).toBe(0); // all ingested at open
    expect(logRows(s2)).toBe(4);
    expect(s2.audit.query({ limit: 10, order: 'asc' }).records.map((r) => [r.seq, r.decisionId])).toEqual([
      [1, 'j-1'],
      [2, 'j-2'],
      [3, 'j-3'],
      [4, 'j-4'],
    ]);
    expect(s2.audit.append([rec(5)])).toEqual([5]);
    s2.close();
  });

  // The store stamps each record with its schema version as it journals it.
  const next = JSON.stringify({ seq: 4, record: { schemaVersion: AUDIT_RECORD_SCHEMA_VERSION, ...rec(4) } });
  const header = (length: number): Buffer => Buffer.from(new Uint32Array([length, 0]).buffer);
  it.each([
    ['a partial frame', () => frame(next).subarray(0, 21)],
    ['a header only', () => frame(next).subarray(0, 8)],
    ['a crc mismatch', () => frame(next, crc32(next) ^ 1)],
    ['a length beyond the file', () => Buffer.concat([header(1000), Buffer.alloc(10)])],
    ['a length over the frame limit', () => Buffer.concat([header(0xffffffff), Buffer.alloc(10)])],
    ['zeros', () => Buffer.alloc(64)],
    ['unparsable JSON with a valid crc', () => frame(next.slice(0, 30))],
    ['a seq that does not increase', () => frame(JSON.stringify({ seq: 3, record: rec(4) }))],
  ])('drops a torn tail (%s) at open, and appends continue after the good frames', (_, tail) => {
    const file = newDbFile();
    const s = Store.open(file);
    s.audit.append([rec(1)]);
    s.audit.append([rec(2), rec(3)]);
    crash(s);
    const torn = tail();
    fs.appendFileSync(journalOf(file), torn);

    const s2 = Store.open(file);
    expect(s2.audit.recovery).toEqual({ ingested: 3, droppedBytes: torn.length });
    expect(seqsOf(s2)).toEqual([1, 2, 3]);
    expect(s2.audit.append([rec(4)])).toEqual([4]);
    crash(s2);
    // The torn bytes are gone: the journal holds exactly the new frame, which recovery finds.
    expect(fs.readFileSync(journalOf(file))).toEqual(frame(next));
    const s3 = Store.open(file);
    expect(s3.audit.recovery).toEqual({ ingested: 1, droppedBytes: 0 });
    expect(s3.audit.query({ limit: 10, order: 'asc' }).records.map((r) => [r.seq, r.decisionId])).toEqual([
      [1, 'j-1'],
      [2, 'j-2'],
      [3, 'j-3'],
      [4, 'j-4'],
    ]);
    expect(s3.integrityCheck()).toBe('ok');
    s3.close();
  });

  it('writes a batch as frames of JSON.stringify({ seq, record }), byte for byte, whatever the text', () => {
    // The payload is written in pieces (encodeFrames): its length, crc and bytes must be those of
    // the whole JSON text, multi-byte characters and escapes included.
    const file = newDbFile();
    const s = Store.open(file);
    const batch = [
      rec(1),
      rec(2, { logs: [{ level: 'info', message: 'é ✓ 😀 "quoted" \\ back\nslash \u0000 \ud800' }] }),
      rec(3, { reason: 'ü'.repeat(300) }),
    ];
    expect(s.audit.append(batch)).toEqual([1, 2, 3]);
    crash(s);
    const stamped = (r: NewAuditRecord): object => ({ schemaVersion: AUDIT_RECORD_SCHEMA_VERSION, ...r });
    expect(fs.readFileSync(journalOf(file))).toEqual(
      Buffer.concat(batch.map((r, k) => frame(JSON.stringify({ seq: k + 1, record: stamped(r) })))),
    );
    const s2 = Store.open(file);
    expect(s2.audit.get('j-2')?.logs).toEqual(batch[1]!.logs);
    s2.close();
  });

  it('stores each record in audit_log as text, the JSON of the record byte for byte, and the same after a restart from the journal', () => {
    const file = newDbFile();
    const s = Store.open(file);
    const stamped = (r: NewAuditRecord): string => JSON.stringify({ schemaVersion: AUDIT_RECORD_SCHEMA_VERSION, ...r });
    const rows = (st: Store): Array<{ type: string; doc: string; bytes: Buffer }> =>
      st.db
        .prepare('SELECT typeof(doc) AS type, doc, CAST(doc AS BLOB) AS bytes FROM audit_log ORDER BY seq')
        .all() as Array<{ type: string; doc: string; bytes: Buffer }>;
    const batch = [rec(1), rec(2, { logs: [{ level: 'info', message: 'é ✓ 😀 "q" \\ \n \u0000 \ud800' }] })];
    s.audit.append(batch);
    expect(s.audit.count()).toBe(2); // a read ingests the journal first
    const expected = batch.map((r) => ({ type: 'text', doc: stamped(r), bytes: Buffer.from(stamped(r), 'utf8') }));
    expect(rows(s)).toEqual(expected);
    // Records a kill -9 left in the journal are ingested from its text at the next open: the same rows.
    s.audit.append([rec(3)]);
    crash(s);
    const s2 = Store.open(file);
    expect(rows(s2)).toEqual([
      ...expected,
      { type: 'text', doc: stamped(rec(3)), bytes: Buffer.from(stamped(rec(3)), 'utf8') },
    ]);
    s2.close();
  });

  it('writes the seq of every size as JSON.stringify does (its digits are written as bytes), and reads it back', () => {
    const seqs = [1, 9, 10, 99, 100, 101, 1000, 123_456_789, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
    const frames = seqs.map((seq) => ({ seq, doc: `{"n":${seq},"t":"é"}` }));
    expect(encodeFrames(frames)).toEqual(
      Buffer.concat(frames.map((f) => frame(JSON.stringify({ seq: f.seq, record: JSON.parse(f.doc) as object })))),
    );
    expect(decodeFrames(encodeFrames(frames)).frames).toEqual(frames);
  });

  it('refuses a record over the frame limit before anything of its batch is written', () => {
    const file = newDbFile();
    const s = Store.open(file);
    s.audit.append([rec(1)]);
    const before = size(journalOf(file));
    const huge = rec(3, { reason: 'x'.repeat(MAX_FRAME_PAYLOAD) });
    expect(() => s.audit.append([rec(2), huge])).toThrow(
      /audit record seq 3 is \d+ bytes of JSON, over the journal's frame limit/,
    );
    expect(size(journalOf(file))).toBe(before);
    expect(s.audit.append([rec(2)])).toEqual([2]);
    s.close();
  });

  it('empties the journal once everything in it is ingested, and seq continues across it', () => {
    const file = newDbFile();
    const s = Store.open(file, 'normal', { journalTruncateBytes: 4096 });
    let i = 0;
    while (size(journalOf(file)) <= 4096) s.audit.append([rec(i++)]);
    const written = i;
    // Ingested in part: the rest is only in the journal, which must stay.
    s.audit.ingestSome(2);
    s.audit.indexSome(2);
    expect(size(journalOf(file))).toBeGreaterThan(4096);
    s.audit.ingestSome(1000);
    s.audit.indexSome(1000);
    expect(size(journalOf(file))).toBe(0);
    expect(logRows(s)).toBe(written);
    // Below the size the journal is kept after ingestion (one truncate per 4 KiB here, 4 MiB by default).
    s.audit.append([rec(i++)]);
    s.audit.ingestSome(1000);
    s.audit.indexSome(1000);
    const small = size(journalOf(file));
    expect(small).toBeGreaterThan(0);
    expect(s.audit.append([rec(i++)])).toEqual([written + 2]);
    crash(s);
    // Recovery skips what is already ingested, and seq goes on above everything.
    const s2 = Store.open(file);
    expect(s2.audit.recovery.ingested).toBe(1);
    expect(seqsOf(s2)).toEqual(Array.from({ length: written + 2 }, (_, k) => k + 1));
    expect(s2.audit.prune({ maxRecords: 0 })).toBe(written + 2);
    s2.close();
    const s3 = Store.open(file);
    expect(s3.audit.append([rec(i++)])).toEqual([written + 3]);
    s3.close();
  });

  it('a short write leaves the journal as it was and acknowledges nothing; appends go on', () => {
    const file = newDbFile();
    let shortBy = 0;
    const s = Store.open(file, 'normal', {
      // The kernel wrote only part of the batch (a full disk).
      journalIo: { write: (fd, bytes) => fs.writeSync(fd, bytes, 0, bytes.length - shortBy) },
    });
    s.audit.append([rec(1)]);
    const before = fs.readFileSync(journalOf(file));
    shortBy = 7;
    expect(() => s.audit.append([rec(2), rec(3)])).toThrow(/short write to the audit journal/);
    expect(fs.readFileSync(journalOf(file))).toEqual(before);
    shortBy = 0;
    expect(s.audit.append([rec(4)])).toEqual([2]); // the failed batch consumed no seq
    expect(s.audit.get('j-2')).toBeNull();
    expect(s.audit.query({ limit: 10, order: 'asc' }).records.map((r) => [r.seq, r.decisionId])).toEqual([
      [1, 'j-1'],
      [2, 'j-4'],
    ]);
    s.close();
  });

  it('a write error (ENOSPC after part of the batch) leaves the journal as it was', () => {
    const file = newDbFile();
    let fail = false;
    const s = Store.open(file, 'normal', {
      journalIo: {
        write: (fd, bytes) => {
          if (!fail) return fs.writeSync(fd, bytes);
          fs.writeSync(fd, bytes, 0, 10);
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
      },
    });
    s.audit.append([rec(1)]);
    const before = fs.readFileSync(journalOf(file));
    fail = true;
    expect(() => s.audit.append([rec(2)])).toThrow(/ENOSPC/);
    expect(fs.readFileSync(journalOf(file))).toEqual(before);
    crash(s);
    const s2 = Store.open(file);
    expect(s2.audit.recovery).toEqual({ ingested: 1, droppedBytes: 0 });
    expect(seqsOf(s2)).toEqual([1]);
    s2.close();
  });

  it('refuses appends once a failed write could not be cut off; the next start drops the torn tail', () => {
    const file = newDbFile();
    let fail = false;
    const s = Store.open(file, 'normal', {
      journalIo: {
        write: (fd, bytes) => (fail ? fs.writeSync(fd, bytes, 0, 5) : fs.writeSync(fd, bytes)),
        truncate: (fd, length) => {
          if (fail) throw new Error('EIO: i/o error, ftruncate');
          fs.ftruncateSync(fd, length);
        },
      },
    });
    s.audit.append([rec(1)]);
    fail = true;
    expect(() => s.audit.append([rec(2)])).toThrow(/short write/);
    // A frame after the 5 torn bytes would be invisible to recovery: the journal fails closed.
    fail = false;
    expect(() => s.audit.append([rec(3)])).toThrow(/unusable since a failed write could not be undone.*EIO/);
    expect(s.audit.get('j-1')).toMatchObject({ seq: 1 }); // what was acknowledged is still read
    crash(s);
    const s2 = Store.open(file);
    expect(s2.audit.recovery).toEqual({ ingested: 0, droppedBytes: 5 });
    expect(s2.audit.append([rec(4)])).toEqual([2]);
    expect(seqsOf(s2)).toEqual([1, 2]);
    s2.close();
  });
});
