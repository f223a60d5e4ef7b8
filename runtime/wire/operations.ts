// The request channel's byte counts: the wire form of a u64 and its parser. The body and answer
// shapes are in schemas/operations.ts.
import { MEMLOCK_UNLIMITED } from '../contract/types.ts';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };

/** Parses the `bytes` field: number, decimal string, or "unlimited" -> u64. */
export function parseBytes(value: unknown): ParseResult<bigint> {
  const hint = 'send bytes as a non-negative integer, a decimal string such as "17179869184", or "unlimited"';
  if (value === 'unlimited') return { ok: true, value: MEMLOCK_UNLIMITED };
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0)
      return { ok: false, message: `bytes ${value} is not a non-negative safe integer`, hint };
    return { ok: true, value: BigInt(value) };
  }
  if (typeof value === 'string') {
    if (!/^[0-9]{1,20}$/.test(value))
      return { ok: false, message: `bytes "${value.slice(0, 40)}" is not a decimal u64`, hint };
    const n = BigInt(value);
    if (n > MEMLOCK_UNLIMITED) return { ok: false, message: `bytes ${value} is larger than u64 max`, hint };
    return { ok: true, value: n };
  }
  return {
    ok: false,
    message: `bytes must be a number or a string, got ${value === null ? 'null' : typeof value}`,
    hint,
  };
}

// The last two counts formatted, and their text: a decision formats its request's count, then the
// same count again in its set-memlock call, and a limit whose soft and hard are one value.
let bytes0 = -1n;
let text0 = '-1';
let bytes1 = -1n;
let text1 = '-1';

/** The wire form of a u64 byte count: "unlimited" or a decimal string. */
export function formatBytes(bytes: bigint): string {
  if (bytes === bytes0) return text0;
  if (bytes === bytes1) return text1;
  const text = bytes === MEMLOCK_UNLIMITED ? 'unlimited' : bytes.toString();
  bytes1 = bytes0;
  text1 = text0;
  bytes0 = bytes;
  text0 = text;
  return text;
}
