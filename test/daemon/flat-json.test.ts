// Audit records are written as JSON made flat in a buffer the writer reuses (store/flat-json.ts):
// the text must be JSON.stringify's, whatever the record holds, and nothing of one record may
// show in the next.
import { describe, expect, it } from 'vitest';
import { flatJson, flatJsonBytes } from '../../runtime/store/flat-json.ts';
import { auditRecord } from './helpers/audit-records.ts';

const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: 'two' });

const VALUES: Array<[string, unknown]> = [
  ['an audit record', auditRecord(1)],
  ['an audit record with calls and logs', auditRecord(2, { logs: [{ level: 'warn', message: 'ünï "quoted" \\ \n' }] })],
  [
    'plain strings and escapes',
    ['', 'abc', 'quo"te', 'back\\slash', 'tab\t', 'nul\u0000', 'del\u007f', 'é', '😀', '\ud800', '\udc00x', '\u2028'],
  ],
  ['numbers', [0, -0, 1, -1.5, 1e21, 1.5e-7, Number.MAX_SAFE_INTEGER, Number.NaN, Number.POSITIVE_INFINITY, -Infinity]],
  [
    'integers written digit by digit, at every digit count',
    [
      9,
      10,
      99,
      100,
      101,
      999_999,
      1_000_000,
      4_194_304,
      123_456_789,
      10 ** 15,
      10 ** 15 - 1,
      2 ** 53,
      10 ** 16,
      -7,
      -10,
    ],
  ],
  [
    'strings at the length where they stop being written a character at a time',
    [
      'a'.repeat(127),
      'a'.repeat(128),
      'a'.repeat(129),
      `${'a'.repeat(127)}"`,
      `${'a'.repeat(128)}é`,
      `${'b'.repeat(129)}\n`,
    ],
  ],
  ['booleans, null, undefined in arrays', [true, false, null, undefined]],
  ['members left out when undefined', { a: undefined, b: 1, c: undefined, d: { e: undefined } }],
  ['keys in their own order, integer-like first', { b: 1, 2: 'two', 1: 'one', a: [], 'k"ey': {}, ké: 0 }],
  ['nested empties', { a: {}, b: [], c: [[], [{}]], d: '' }],
  ['an object without a prototype', { nullProto }],
  ['a Date (toJSON: left to JSON.stringify)', { at: new Date(0) }],
  ['a Map (not plain: left to JSON.stringify)', { m: new Map([[1, 2]]) }],
];

describe('flatJson', () => {
  it.each(VALUES)('writes what JSON.stringify writes: %s', (_name, value) => {
    expect(flatJson(value)).toBe(JSON.stringify(value));
  });

  it.each(VALUES)("writes JSON.stringify's UTF-8 bytes where it writes bytes: %s", (_name, value) => {
    const json = flatJsonBytes(value);
    const expected = Buffer.from(JSON.stringify(value), 'utf8');
    // Null only for what it leaves to JSON.stringify.
    if (json === null) expect(flatJson(value)).toBe(JSON.stringify(value));
    else expect(json.buf.subarray(0, json.length)).toEqual(expected);
  });

  it('throws where JSON.stringify throws (a bigint), and writes the next value whole', () => {
    expect(() => flatJson({ n: 1n })).toThrow(TypeError);
    expect(flatJson({ after: 'throw' })).toBe('{"after":"throw"}');
  });

  it('writes a value whose getter writes another one meanwhile (the writer is reused, not shared by the two)', () => {
    const inner = { inner: 'z'.repeat(5000) };
    let innerJson = '';
    const outer = {
      before: 'a'.repeat(100),
      get nested(): string {
        innerJson = flatJson(inner);
        return 'n';
      },
      after: 'b'.repeat(100),
    };
    expect(flatJson(outer)).toBe(JSON.stringify({ before: outer.before, nested: 'n', after: outer.after }));
    expect(innerJson).toBe(JSON.stringify(inner));
  });

  it('leaves nothing of a longer value in the next one (its buffer is reused), also past its first size', () => {
    const long = { message: 'x'.repeat(10_000), more: 'é'.repeat(3000) };
    expect(flatJson(long)).toBe(JSON.stringify(long));
    expect(flatJson({ a: 1 })).toBe('{"a":1}');
    expect(flatJson('')).toBe('""');
    const huge = { message: 'y'.repeat(200_000) };
    expect(flatJson(huge)).toBe(JSON.stringify(huge));
    expect(flatJson([1])).toBe('[1]');
  });
});
