// Decision ids: UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.
// Time-ordered ids land at the end of the audit index on decision_id instead of on a random
// page of it, and still cannot be guessed or collide in practice.
import { randomFillSync } from 'node:crypto';

// Random bytes drawn in bulk: one getrandom per 256 ids instead of one per id.
const POOL_IDS = 256;
const pool = Buffer.alloc(POOL_IDS * 10);
let next = POOL_IDS;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function newDecisionId(now = Date.now()): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const r = next++ * 10;
  const b = new Array<string>(16);
  // Bytes 0-5: the timestamp, big-endian.
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    b[i] = HEX[ms % 256]!;
    ms = Math.floor(ms / 256);
  }
  b[6] = HEX[0x70 | (pool[r]! & 0x0f)]!; // version 7
  b[7] = HEX[pool[r + 1]!]!;
  b[8] = HEX[0x80 | (pool[r + 2]! & 0x3f)]!; // variant 10
  for (let i = 9; i < 16; i++) b[i] = HEX[pool[r + i - 6]!]!;
  return `${b[0]}${b[1]}${b[2]}${b[3]}-${b[4]}${b[5]}-${b[6]}${b[7]}-${b[8]}${b[9]}-${b[10]}${b[11]}${b[12]}${b[13]}${b[14]}${b[15]}`;
}
