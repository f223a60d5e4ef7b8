// The framing of capgate's append-only journals (audit-journal.ts, effects/effect-journal.ts):
// little-endian u32 payload length, u32 crc32 of the payload, payload = UTF-8 JSON. A batch of
// frames is one write() on an O_APPEND fd, so a torn write can only be the last thing in the
// file; a reader keeps the valid prefix and stops at the first frame that is short, fails its
// crc or is refused by the caller's parser.
import { crc32 } from 'node:zlib';

export const FRAME_HEADER_BYTES = 8;
/** The largest payload written or read: far above any record (the engine limits bound its logs). */
export const MAX_FRAME_PAYLOAD = 16 * 1024 * 1024;

/** Encodes JSON payloads as frames back to back, ready for one write. Throws on one too large. */
export function encodeFrames(payloads: readonly string[], describe: (k: number) => string = (k) => `frame ${k}`): Buffer {
  const lengths = payloads.map((p) => Buffer.byteLength(p));
  const buf = Buffer.allocUnsafe(lengths.reduce((sum, n) => sum + FRAME_HEADER_BYTES + n, 0));
  let off = 0;
  for (let k = 0; k < payloads.length; k++) {
    const n = lengths[k]!;
    if (n > MAX_FRAME_PAYLOAD) throw new RangeError(`${describe(k)} is ${n} bytes of JSON, over the journal's frame limit of ${MAX_FRAME_PAYLOAD}`);
    buf.write(payloads[k]!, off + FRAME_HEADER_BYTES, n, 'utf8');
    buf.writeUInt32LE(n, off);
    buf.writeUInt32LE(crc32(buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + n)), off + 4);
    off += FRAME_HEADER_BYTES + n;
  }
  return buf;
}

/**
 * The valid prefix of a journal: each frame's payload through `parse` (given the previous
 * accepted item), and where the first bad, short or refused (`parse` returned null) frame starts.
 */
export function decodeFrames<T>(buf: Buffer, parse: (text: string, previous: T | undefined) => T | null): { items: T[]; validBytes: number } {
  const items: T[] = [];
  let off = 0;
  while (off + FRAME_HEADER_BYTES <= buf.length) {
    const n = buf.readUInt32LE(off);
    if (n === 0 || n > MAX_FRAME_PAYLOAD || off + FRAME_HEADER_BYTES + n > buf.length) break;
    const payload = buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + n);
    if (crc32(payload) !== buf.readUInt32LE(off + 4)) break;
    const item = parse(payload.toString('utf8'), items.at(-1));
    if (item === null) break;
    items.push(item);
    off += FRAME_HEADER_BYTES + n;
  }
  return { items, validBytes: off };
}

/**
 * Every valid frame in a journal that several writers append to: a frame that is bad (a write
 * cut short by a full disk, with other writers' frames after it) is skipped by looking for the
 * next valid frame one byte further, instead of ending the journal there. `skippedBytes`: how
 * much was not part of any valid frame.
 */
export function scanFrames<T>(buf: Buffer, parse: (text: string) => T | null): { items: T[]; skippedBytes: number } {
  const items: T[] = [];
  let skippedBytes = 0;
  let off = 0;
  while (off + FRAME_HEADER_BYTES <= buf.length) {
    const n = buf.readUInt32LE(off);
    const end = off + FRAME_HEADER_BYTES + n;
    const item =
      n > 0 && n <= MAX_FRAME_PAYLOAD && end <= buf.length && crc32(buf.subarray(off + FRAME_HEADER_BYTES, end)) === buf.readUInt32LE(off + 4)
        ? parse(buf.toString('utf8', off + FRAME_HEADER_BYTES, end))
        : null;
    if (item === null) {
      off++;
      skippedBytes++;
      continue;
    }
    items.push(item);
    off = end;
  }
  return { items, skippedBytes: skippedBytes + (buf.length - off) };
}
