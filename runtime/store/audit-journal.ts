// The audit journal: an append-only file beside the database (`<db>-audit-journal`, mode 0600)
// that holds acknowledged audit records until the ingester (audit-ingester.ts) has moved them
// into audit_log. With durability 'normal' the commit of a batch of decisions is one write() of
// its frames here: the guarantee of a SQLite commit with synchronous=NORMAL (the OS page cache:
// survives kill -9 of the daemon, not a power loss), for a fraction of its cost. With 'full' the
// same write is followed by an fdatasync on the thread pool before the records are acknowledged,
// and the journal has two segments (audit-journal-synced.ts).
//
// Frame, little-endian: u32 payload length, u32 crc32 of the payload, payload = UTF-8 JSON of
// { seq, record }. A batch is one write() on an O_APPEND fd; a failed or short write is cut off
// again (ftruncate to the size before it), so nothing of it is acknowledged. At open the frames
// are read from the start, and the first one that is short, fails its crc or is not a
// { seq, record } with a seq above the previous one ends the log: the file is truncated there.
// Only the last write can be torn that way, one that never returned, so the cut never drops an
// acknowledged record (whole frames of such a write are kept: records of decisions never
// answered, as when the daemon dies between a commit and its answers).
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { isJsonObject, parseJsonObject } from '../wire/json-object.ts';

/**
 * One record in the journal: its seq and its JSON (what audit_log.doc stores, as text). The
 * store writes the JSON's UTF-8 bytes (audit-store.ts: auditDocBytes), a journal read back gives
 * its text: the same JSON either way.
 */
export interface JournalFrame {
  seq: number;
  doc: string | Buffer;
}

const HEADER_BYTES = 8;
/** The largest payload written or read: far above any record (the engine limits bound its logs). */
export const MAX_FRAME_PAYLOAD = 16 * 1024 * 1024;

/** The journal file of a database file. */
export function journalFileOf(databaseFile: string): string {
  return `${databaseFile}-audit-journal`;
}

/**
 * The calls that change the file or make it durable: a seam for tests (short writes, a full
 * disk, a failed cut, a failed or held fdatasync).
 */
export interface JournalIo {
  /** One write() of a whole batch; returns the bytes written. */
  write(fd: number, bytes: Buffer): number;
  truncate(fd: number, length: number): void;
  /** fdatasync(fd) on libuv's thread pool, never on the calling thread (durability 'full'). */
  fdatasync(fd: number, done: (err: Error | null) => void): void;
  /** open, fdatasync, close of a file or directory by name, all on the thread pool ('full'). */
  syncFile(file: string, done: (err: Error | null) => void): void;
}

/** fdatasync of a file or directory by name, every step on libuv's thread pool. */
function syncFileByName(file: string, done: (err: Error | null) => void): void {
  fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW, (openErr, fd) => {
    if (openErr) return done(openErr);
    fs.fdatasync(fd, (syncErr) => fs.close(fd, (closeErr) => done(syncErr ?? closeErr ?? null)));
  });
}

export const FS_IO: JournalIo = {
  write: (fd, bytes) => fs.writeSync(fd, bytes),
  truncate: (fd, length) => fs.ftruncateSync(fd, length),
  fdatasync: (fd, done) => fs.fdatasync(fd, done),
  syncFile: syncFileByName,
};

export class JournalWriteError extends Error {
  override readonly name = 'JournalWriteError';
}

/** Encodes frames back to back, ready for one write. Throws on a record too large to frame. */
export function encodeFrames(frames: readonly JournalFrame[]): Buffer {
  // The payload `{"seq":N,"record":DOC}` is JSON.stringify({ seq, record }) without serialising
  // the record twice. It is written in its three pieces: one string joining them would be copied
  // flat again (its length and bytes are read) before it is written, ~1 KB a decision.
  let total = 0;
  for (const f of frames) {
    const n = payloadBytes(f);
    if (n > MAX_FRAME_PAYLOAD)
      throw new RangeError(
        `audit record seq ${f.seq} is ${n} bytes of JSON, over the journal's frame limit of ${MAX_FRAME_PAYLOAD}`,
      );
    total += HEADER_BYTES + n;
  }
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (const f of frames) {
    const start = off + HEADER_BYTES;
    let at = start + buf.write(SEQ_OPEN, start, 'latin1');
    at = writeSeq(buf, at, f.seq);
    at += buf.write(RECORD_KEY, at, 'latin1');
    if (typeof f.doc === 'string') at += buf.write(f.doc, at, 'utf8');
    else {
      buf.set(f.doc, at);
      at += f.doc.length;
    }
    buf[at++] = CLOSE_BRACE;
    buf.writeUInt32LE(at - start, off);
    buf.writeUInt32LE(crc32(buf.subarray(start, at)), off + 4);
    off = at;
  }
  return buf;
}

const CLOSE_BRACE = 0x7d;
// The payload's head `{"seq":N,"record":` in its pieces, the seq's digits written as bytes (a
// string of the head made per frame, twice, was ~150 B of garbage per decision).
const SEQ_OPEN = '{"seq":';
const RECORD_KEY = ',"record":';

/** Decimal digits of a seq (a positive safe integer), as String(seq) has them. */
function seqDigits(seq: number): number {
  let n = 1;
  for (let v = seq; v >= 10; v = Math.floor(v / 10)) n++;
  return n;
}

/** Writes the seq's digits at `at`; returns the offset after them. */
function writeSeq(buf: Buffer, at: number, seq: number): number {
  if (!Number.isSafeInteger(seq) || seq < 0) return at + buf.write(String(seq), at, 'latin1');
  const end = at + seqDigits(seq);
  let v = seq;
  for (let i = end - 1; i >= at; i--) {
    buf[i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  return end;
}

/** The payload's UTF-8 bytes: its head is ASCII, its end one byte. */
const payloadBytes = (f: JournalFrame): number =>
  SEQ_OPEN.length +
  (Number.isSafeInteger(f.seq) && f.seq >= 0 ? seqDigits(f.seq) : String(f.seq).length) +
  RECORD_KEY.length +
  (typeof f.doc === 'string' ? Buffer.byteLength(f.doc) : f.doc.length) +
  1;

/** Decodes the valid prefix of a journal: its frames, and where the first bad or short frame starts. */
export function decodeFrames(buf: Buffer): { frames: JournalFrame[]; validBytes: number } {
  const frames: JournalFrame[] = [];
  let off = 0;
  let lastSeq = 0;
  while (off + HEADER_BYTES <= buf.length) {
    const n = buf.readUInt32LE(off);
    if (n === 0 || n > MAX_FRAME_PAYLOAD || off + HEADER_BYTES + n > buf.length) break;
    const payload = buf.subarray(off + HEADER_BYTES, off + HEADER_BYTES + n);
    if (crc32(payload) !== buf.readUInt32LE(off + 4)) break;
    const frame = parsePayload(payload.toString('utf8'));
    if (frame === null || frame.seq <= lastSeq) break;
    frames.push(frame);
    lastSeq = frame.seq;
    off += HEADER_BYTES + n;
  }
  return { frames, validBytes: off };
}

function parsePayload(text: string): JournalFrame | null {
  const v = parseJsonObject(text);
  if (v === null) return null;
  const { seq, record } = v;
  if (!Number.isSafeInteger(seq) || (seq as number) < 1 || !isJsonObject(record)) return null;
  return { seq: seq as number, doc: JSON.stringify(record) };
}

export interface OpenedJournal {
  journal: AuditJournal;
  /** The valid frames found at open, in seq order (ingested or not: the ingester decides). */
  frames: JournalFrame[];
  /** Bytes of a torn or bad tail cut off at open (0 after a clean stop or a clean kill). */
  droppedBytes: number;
}

export class AuditJournal {
  // Set when a failed write could not be cut off: appending after a torn frame would hide every
  // later frame from recovery, so the journal refuses appends until the daemon is restarted.
  private broken: Error | undefined;

  private constructor(
    readonly file: string,
    private fd: number,
    private bytes: number,
    private readonly io: JournalIo,
  ) {}

  /** Opens (creates) the journal, reads its valid frames and cuts off a torn tail. */
  static open(file: string, io: Partial<JournalIo> = {}): OpenedJournal {
    const { O_RDWR, O_APPEND, O_CREAT, O_NOFOLLOW } = fs.constants;
    const fd = fs.openSync(file, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW, 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      const content = fs.readFileSync(fd);
      const { frames, validBytes } = decodeFrames(content);
      if (validBytes < content.length) fs.ftruncateSync(fd, validBytes);
      return {
        journal: new AuditJournal(file, fd, validBytes, { ...FS_IO, ...io }),
        frames,
        droppedBytes: content.length - validBytes,
      };
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** The journal's size in bytes (what this process wrote and kept). */
  get size(): number {
    return this.bytes;
  }

  /** Appends the frames with one write; on any failure nothing of them stays in the file, and it throws. */
  append(frames: readonly JournalFrame[]): void {
    if (this.broken)
      throw new JournalWriteError(
        `the audit journal ${this.file} is unusable since a failed write could not be undone (${this.broken.message}); restart the daemon`,
      );
    const bytes = encodeFrames(frames);
    const before = this.bytes;
    let written: number;
    try {
      written = this.io.write(this.fd, bytes);
    } catch (err) {
      this.cutBack(before);
      throw err;
    }
    if (written !== bytes.length) {
      this.cutBack(before);
      throw new JournalWriteError(
        `short write to the audit journal ${this.file}: ${written} of ${bytes.length} bytes (disk full?)`,
      );
    }
    this.bytes = before + written;
  }

  /** Empties the journal. Only once every frame in it is ingested (recovery would skip them anyway). */
  truncate(): void {
    this.io.truncate(this.fd, 0);
    this.bytes = 0;
  }

  /** Everything in the journal is ingested: with durability 'normal' it is emptied once over `aboveBytes`. */
  drained(aboveBytes: number): void {
    if (this.bytes > aboveBytes) this.truncate();
  }

  /**
   * fdatasync on the thread pool: `done(null)` once every byte written before the call is on
   * disk. The caller keeps one in flight at a time (audit-journal-synced.ts).
   */
  sync(done: (err: Error | null) => void): void {
    if (this.fd < 0) return done(new JournalWriteError(`the audit journal ${this.file} is closed`));
    this.io.fdatasync(this.fd, done);
  }

  /**
   * Cuts the journal back to `size` (bytes written after a failed fdatasync). When the cut itself
   * fails the journal refuses appends from then on, as after a failed write.
   */
  cutTo(size: number): void {
    if (size >= this.bytes) return;
    this.cutBack(size);
    if (this.broken === undefined) this.bytes = size;
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  private cutBack(size: number): void {
    try {
      this.io.truncate(this.fd, size);
    } catch (err) {
      this.broken = err instanceof Error ? err : new Error(String(err));
    }
  }
}
