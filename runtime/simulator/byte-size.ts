// Byte sizes as Kubernetes writes quantities, because capgate's users are KubeVirt people:
// Ki, Mi, Gi, Ti, Pi, Ei are binary (16Gi = 16 × 2³⁰), k, M, G, T, P, E are decimal
// (16G = 16 × 10⁹), plain digits are bytes. Spellings that could mean either ("4GB", "64K",
// "512m") are refused with the two readings spelled out: the gap between 16G and 16Gi is ~7%,
// right where a memlock cap sits. Output always uses the binary forms.
import { MEMLOCK_UNLIMITED } from '../contract/types.ts';
import { parseBytes } from '../wire/operations.ts';

const BINARY: ReadonlyArray<readonly [string, bigint]> = [
  ['Ei', 1n << 60n],
  ['Pi', 1n << 50n],
  ['Ti', 1n << 40n],
  ['Gi', 1n << 30n],
  ['Mi', 1n << 20n],
  ['Ki', 1n << 10n],
];

const DECIMAL: ReadonlyArray<readonly [string, bigint]> = [
  ['E', 10n ** 18n],
  ['P', 10n ** 15n],
  ['T', 10n ** 12n],
  ['G', 10n ** 9n],
  ['M', 10n ** 6n],
  ['k', 10n ** 3n],
];

const FACTORS = new Map<string, bigint>([['', 1n], ...BINARY, ...DECIMAL]);

export type ByteSizeResult = { ok: true; bytes: bigint } | { ok: false; message: string };

export const BYTE_SIZE_HINT =
  'write a Kubernetes quantity: Ki, Mi, Gi, Ti are binary (16Gi), k, M, G, T decimal (16G = 16×10⁹), plain digits are bytes, or "unlimited"';

/** Parses "16Gi", "16G", "1.5Gi", "65536", "unlimited" (also "infinity", "max") into u64 bytes. */
export function parseByteSize(input: string | number | bigint): ByteSizeResult {
  if (typeof input === 'bigint') return checkRange(input, String(input));
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input))
      return { ok: false, message: `${input} is not a whole number of bytes: ${BYTE_SIZE_HINT}` };
    return checkRange(BigInt(input), String(input));
  }
  const text = input.trim();
  if (/^(unlimited|infinity|max)$/i.test(text)) return { ok: true, bytes: MEMLOCK_UNLIMITED };
  const m = /^(\d+)(?:\.(\d+))?([A-Za-z]*)$/.exec(text);
  if (!m) return { ok: false, message: `"${shown(input)}" is not a byte size: ${BYTE_SIZE_HINT}` };
  const [, whole, written = '', suffix = ''] = m;
  const factor = FACTORS.get(suffix);
  if (factor === undefined) return { ok: false, message: ambiguous(whole!, written, suffix) };
  // At most 19 significant decimals, as the SDKs' parsers (10^19 is the largest power of ten in a u64).
  const fraction = written.replace(/0+$/, '');
  if (fraction.length > 19)
    return { ok: false, message: `"${shown(text)}" has more than 19 significant decimals: ${BYTE_SIZE_HINT}` };
  // 1.5Gi is a whole number of bytes; 1.5 (bytes) or 0.1k... is not, unless it comes out whole.
  const scale = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(whole!) * scale + BigInt(fraction === '' ? '0' : fraction)) * factor;
  if (scaled % scale !== 0n)
    return { ok: false, message: `"${text}" is not a whole number of bytes: ${BYTE_SIZE_HINT}` };
  return checkRange(scaled / scale, text);
}

/** The message for a suffix that is not a Kubernetes one: both readings it could have had. */
function ambiguous(whole: string, fraction: string, suffix: string): string {
  const n = fraction === '' ? whole : `${whole}.${fraction}`;
  const written = `${n}${suffix}`;
  const letter = suffix.replace(/i?B$/i, '').replace(/i$/, '');
  const upper = letter.toUpperCase();
  const binary = BINARY.find(([u]) => u[0] === upper);
  const decimal = DECIMAL.find(([u]) => u.toUpperCase() === upper);
  if (letter.length === 1 && binary && decimal) {
    if (suffix === `${binary[0]}B`)
      return `"${written}" is not a Kubernetes quantity: write ${n}${binary[0]} (binary, drop the B)`;
    const why = letter === 'm' ? ' ("m" means milli in Kubernetes)' : '';
    return `"${written}" is ambiguous${why}: write ${n}${binary[0]} (binary, ${n} × 2^${log2(binary[1])}) or ${n}${decimal[0]} (decimal, ${n} × 10^${log10(decimal[1])})`;
  }
  return `"${written}" has an unknown suffix "${suffix}": ${BYTE_SIZE_HINT}`;
}

const log2 = (f: bigint): number => f.toString(2).length - 1;
const log10 = (f: bigint): number => f.toString().length - 1;

function shown(input: string): string {
  return input.length > 40 ? `${input.slice(0, 40)}…` : input;
}

function checkRange(bytes: bigint, text: string): ByteSizeResult {
  if (bytes < 0n) return { ok: false, message: `${text} is negative: ${BYTE_SIZE_HINT}` };
  if (bytes > MEMLOCK_UNLIMITED)
    return { ok: false, message: `${shown(text)} does not fit in 64 bits (the largest is 16Ei - 1, or "unlimited")` };
  return { ok: true, bytes };
}

/**
 * Prints bytes in the binary form parseByteSize reads back: exact multiples get the largest
 * unit, unless that leaves a long number (16G is 15625000Ki: clearer as plain bytes).
 */
export function formatByteSize(bytes: bigint): string {
  if (bytes === MEMLOCK_UNLIMITED) return 'unlimited';
  for (const [unit, factor] of BINARY) {
    if (bytes >= factor && bytes % factor === 0n)
      return bytes / factor < 1_024_000n ? `${bytes / factor}${unit}` : String(bytes);
  }
  return String(bytes);
}

/** A wire byte count (decimal string or "unlimited", as audit records carry it) for people. */
export function formatWireBytes(wire: string): string {
  const p = parseBytes(wire);
  return p.ok ? formatByteSize(p.value) : wire;
}
