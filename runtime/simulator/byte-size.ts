// Byte sizes as people write them for memlock: 8G, 512M, 64K, unlimited, or plain digits.
// Suffixes are binary (K = 1024), like prlimit(1), ulimit and systemd's LimitMEMLOCK=.
import { MEMLOCK_UNLIMITED } from '../contract/types.ts';

const UNITS: ReadonlyArray<readonly [string, bigint]> = [
  ['E', 1n << 60n],
  ['P', 1n << 50n],
  ['T', 1n << 40n],
  ['G', 1n << 30n],
  ['M', 1n << 20n],
  ['K', 1n << 10n],
];

export type ByteSizeResult = { ok: true; bytes: bigint } | { ok: false; message: string };

const HINT = 'write digits with an optional K/M/G/T/P/E suffix (binary, e.g. 8G, 512M) or "unlimited"';

/** Parses "8G", "512Mi", "64KiB", "1048576", "unlimited" (also "infinity", "max") into u64 bytes. */
export function parseByteSize(input: string | number | bigint): ByteSizeResult {
  if (typeof input === 'bigint') return checkRange(input, String(input));
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input)) return { ok: false, message: `${input} is not a whole number of bytes: ${HINT}` };
    return checkRange(BigInt(input), String(input));
  }
  const text = input.trim();
  if (/^(unlimited|infinity|max)$/i.test(text)) return { ok: true, bytes: MEMLOCK_UNLIMITED };
  const m = /^(\d+)\s*([KMGTPE]?)(i?B?)$/i.exec(text);
  if (!m || (m[2] === '' && m[3] !== '' && m[3]!.toUpperCase() !== 'B')) {
    return { ok: false, message: `"${input}" is not a byte size: ${HINT}` };
  }
  const unit = (m[2] ?? '').toUpperCase();
  const factor = UNITS.find(([u]) => u === unit)?.[1] ?? 1n;
  return checkRange(BigInt(m[1]!) * factor, text);
}

function checkRange(bytes: bigint, shown: string): ByteSizeResult {
  if (bytes < 0n) return { ok: false, message: `${shown} is negative: ${HINT}` };
  if (bytes > MEMLOCK_UNLIMITED) return { ok: false, message: `${shown} does not fit in 64 bits: ${HINT}` };
  return { ok: true, bytes };
}

/** Prints bytes the way parseByteSize reads them: exact multiples get the largest unit. */
export function formatByteSize(bytes: bigint): string {
  if (bytes === MEMLOCK_UNLIMITED) return 'unlimited';
  for (const [unit, factor] of UNITS) {
    if (bytes >= factor && bytes % factor === 0n) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}
