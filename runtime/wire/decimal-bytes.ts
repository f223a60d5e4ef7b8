// A positive safe integer written as the decimal digits String() gives, straight into bytes: the
// audit record's JSON and the effect journal's intent are written so, without a string made for
// each number (flat-json.ts, effect-intent.ts).

/** How many decimal digits `n` has (a positive safe integer). */
export function decimalDigits(n: number): number {
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  return digits;
}

/** Writes `n` (a positive safe integer of `digits` digits) into `into` from `at`; returns the end. */
export function writeDecimal(into: Uint8Array, at: number, n: number, digits: number): number {
  const end = at + digits;
  let i = end;
  while (n > 0) {
    const q = Math.floor(n / 10);
    into[--i] = 0x30 + (n - q * 10);
    n = q;
  }
  return end;
}
