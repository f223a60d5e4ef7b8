// Decision ids: UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.
// Time-ordered ids land at the end of the audit index on decision_id instead of on a random
// page of it, and still cannot be guessed or collide in practice.
import { randomFillSync } from 'node:crypto';

// Random bytes drawn in bulk: one getrandom per 256 ids instead of one per id.
const POOL_IDS = 256;
const pool = Buffer.alloc(POOL_IDS * 10);
let next = POOL_IDS;

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
// The id's 36 characters are written here and read out as one flat string: every decision makes
// one, and building it from 16 pieces cost ~700 bytes of garbage each (measured), ~20x the id.
const text = Buffer.from('00000000-0000-7000-8000-000000000000', 'latin1');
/** Where each of the 16 bytes' two hex digits go in `text`. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

function put(i: number, byte: number): void {
  text[AT[i]!] = HEX_DIGITS[byte >> 4]!;
  text[AT[i]! + 1] = HEX_DIGITS[byte & 0x0f]!;
}

export function newDecisionId(now = Date.now()): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const r = next++ * 10;
  // Bytes 0-5: the timestamp, big-endian.
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    put(i, ms % 256);
    ms = Math.floor(ms / 256);
  }
  put(6, 0x70 | (pool[r]! & 0x0f)); // version 7
  put(7, pool[r + 1]!);
  put(8, 0x80 | (pool[r + 2]! & 0x3f)); // variant 10
  for (let i = 9; i < 16; i++) put(i, pool[r + i - 6]!);
  return text.toString('latin1');
}
