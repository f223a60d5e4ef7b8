// How many frames of a database's write-ahead log are not yet copied back into the database,
// read from the header of its wal-index (`<db>-shm`) without a connection and without a lock:
// mxFrame (the last valid frame) less nBackfill (the frames a checkpoint already copied), as
// https://www.sqlite.org/walformat.html describes them (native byte order; the layout has not
// changed since SQLite 3.7.0). One pread of 136 bytes: cheap enough to poll. A read that does
// not look like that header (another format, a write in progress) says so, and the caller
// checkpoints anyway (PASSIVE costs nothing when there is nothing to copy).
import fs from 'node:fs';
import os from 'node:os';

/** iVersion of the wal-index format this reads (WALINDEX_MAX_VERSION). */
const WAL_INDEX_VERSION = 3_007_000;
/** Two copies of the 48-byte header, then the checkpoint info, whose nBackfill is at 96. */
const HEADER_BYTES = 48;
const READ_BYTES = 136;
const LITTLE_ENDIAN = os.endianness() === 'LE';

export type WalIndexLook =
  | {
      ok: true;
      framesWaiting: number;
      /** Frames in the log (mxFrame): 0 once it starts again from its beginning. */
      frames: number;
      pageBytes: number;
    }
  | { ok: false; reason: string };

export function walIndexFileOf(databaseFile: string): string {
  return `${databaseFile}-shm`;
}

/** Reads the wal-index header of `databaseFile` (a database in WAL mode with an open connection). */
export function lookAtWal(databaseFile: string): WalIndexLook {
  const file = walIndexFileOf(databaseFile);
  const buf = Buffer.alloc(READ_BYTES);
  let n: number;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      n = fs.readSync(fd, buf, 0, READ_BYTES, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return { ok: false, reason: `cannot read ${file}: ${(err as Error).message}` };
  }
  if (n < READ_BYTES) return { ok: false, reason: `${file} is ${n} bytes, shorter than a wal-index header` };
  return parseWalIndexHeader(buf);
}

/** The header's fields, checked: its version, its two copies equal (a read during a write differs). */
export function parseWalIndexHeader(buf: Buffer): WalIndexLook {
  const u32 = (at: number): number => (LITTLE_ENDIAN ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const version = u32(0);
  if (version !== WAL_INDEX_VERSION)
    return { ok: false, reason: `wal-index version ${version}, not ${WAL_INDEX_VERSION} (another SQLite format)` };
  if (!buf.subarray(0, HEADER_BYTES).equals(buf.subarray(HEADER_BYTES, 2 * HEADER_BYTES)))
    return { ok: false, reason: 'the wal-index header changed while it was read' };
  if (buf[12] !== 1) return { ok: false, reason: 'the wal-index is not initialised' };
  const size = LITTLE_ENDIAN ? buf.readUInt16LE(14) : buf.readUInt16BE(14);
  const mxFrame = u32(16);
  const nBackfill = u32(96);
  // A checkpoint that raced the read can show nBackfill of the log before a restart: no frames then.
  return {
    ok: true,
    framesWaiting: Math.max(0, mxFrame - nBackfill),
    frames: mxFrame,
    pageBytes: size === 1 ? 65_536 : size,
  };
}
