// Byte sizes as capgate reads and prints them: Kubernetes quantities. "16Gi" is binary (Ki Mi
// Gi Ti Pi Ei), "16G" decimal (k M G T P E), plain digits are bytes, "unlimited" is u64 max.
// Same rules as the Rust and C SDKs and capgate itself (runtime/simulator/byte-size.ts).
import { MEMLOCK_UNLIMITED } from "./types";

/** A parsed quantity: `bytes` (MEMLOCK_UNLIMITED for "unlimited"). */
export class Quantity {
  constructor(public bytes: u64) {}
}

const U64_MAX: u64 = 0xffff_ffff_ffff_ffff;

function isDigit(c: i32): bool {
  return c >= 48 && c <= 57;
}

function isBlank(c: i32): bool {
  return c == 32 || c == 9;
}

// Overflow-checked: null-free sentinel so the caller can bail out.
let overflowed = false;

function mul(a: u64, b: u64): u64 {
  if (a != 0 && b > U64_MAX / a) overflowed = true;
  return a * b;
}

function add(a: u64, b: u64): u64 {
  if (a > U64_MAX - b) overflowed = true;
  return a + b;
}

function pow(base: u64, n: i32): u64 {
  let r: u64 = 1;
  for (let i = 0; i < n; i++) r *= base;
  return r;
}

/**
 * Parses "16Gi", "16G", "1.5Gi", "17179869184" or "unlimited"; null for anything else:
 * ambiguous spellings ("4GB", "64K"), overflow, a fraction of a byte.
 */
export function parseQuantity(text: string): Quantity | null {
  let start = 0;
  let end = text.length;
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  const t = text.substring(start, end);
  const lower = t.toLowerCase();
  if (lower == "unlimited" || lower == "infinity" || lower == "max") return new Quantity(MEMLOCK_UNLIMITED);
  const n = t.length;
  let i = 0;
  if (n == 0 || !isDigit(t.charCodeAt(0))) return null;
  overflowed = false;
  let whole: u64 = 0;
  while (i < n && isDigit(t.charCodeAt(i))) {
    whole = add(mul(whole, 10), <u64>(t.charCodeAt(i) - 48));
    i++;
  }
  if (overflowed) return null;
  // The fraction, trailing zeros dropped: at most 19 significant digits (10^19 fits in u64).
  let frac: u64 = 0;
  let fracDigits: i32 = 0;
  if (i < n && t.charCodeAt(i) == 46) {
    i++;
    const from = i;
    while (i < n && isDigit(t.charCodeAt(i))) i++;
    if (i == from) return null;
    let to = i;
    while (to > from && t.charCodeAt(to - 1) == 48) to--;
    if (to - from > 19) return null;
    for (let j = from; j < to; j++) frac = frac * 10 + <u64>(t.charCodeAt(j) - 48);
    fracDigits = to - from;
  }
  const suffix = t.substring(i);
  let shift: i32 = 0;
  let exponent: i32 = 0;
  if (suffix.length == 2 && suffix.charAt(1) == "i") {
    const k = "KMGTPE".indexOf(suffix.charAt(0));
    if (k < 0) return null;
    shift = 10 * (k + 1);
  } else if (suffix.length == 1) {
    const k = "kMGTPE".indexOf(suffix);
    if (k < 0) return null;
    exponent = 3 * (k + 1);
  } else if (suffix.length != 0) {
    return null;
  }
  const factor: u64 = (<u64>1 << <u64>shift) * pow(10, exponent);
  let total = mul(whole, factor);
  if (fracDigits > 0) {
    // frac / 10^d * factor must be whole; 10^d = 2^d * 5^d.
    let part: u64;
    if (exponent != 0) {
      if (fracDigits > exponent) return null;
      part = frac * pow(10, exponent - fracDigits);
    } else {
      const five = pow(5, fracDigits);
      if (frac % five != 0) return null;
      const h = frac / five; // < 2^fracDigits
      if (shift >= fracDigits) {
        part = h << <u64>(shift - fracDigits);
      } else {
        const down = <u64>(fracDigits - shift);
        if ((h & ((<u64>1 << down) - 1)) != 0) return null;
        part = h >> down;
      }
    }
    total = add(total, part);
  }
  return overflowed ? null : new Quantity(total);
}

const UNITS: string[] = ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"];

/** A byte count as capgate prints sizes: "16Gi", "1536Mi", "64Ki", "1000", "unlimited". */
export function formatBytes(bytes: u64): string {
  if (bytes == MEMLOCK_UNLIMITED) return "unlimited";
  for (let i = 0; i < 6; i++) {
    const shift = <u64>(60 - 10 * i);
    const factor: u64 = <u64>1 << shift;
    if (bytes >= factor && bytes % factor == 0) {
      const q = bytes >> shift;
      if (q >= 1024000) break;
      return q.toString() + unchecked(UNITS[i]);
    }
  }
  return bytes.toString();
}
