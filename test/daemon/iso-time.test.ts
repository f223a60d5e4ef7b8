// The request's time as the audit record writes it: isoTime(ms) is new Date(ms).toISOString()
// whatever the order of the calls (it keeps the text of the current second in a buffer it reuses).
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../runtime/server/request/iso-time.ts';

describe('isoTime', () => {
  it('is toISOString across milliseconds, seconds, days, years and leap days, forwards and back', () => {
    const starts = [
      0,
      999,
      1000,
      Date.UTC(2024, 1, 29, 23, 59, 59, 998),
      Date.UTC(2026, 11, 31, 23, 59, 59, 990),
      Date.now(),
    ];
    const times: number[] = [];
    for (const s of starts) for (let d = -15; d <= 15; d++) if (s + d >= 0) times.push(s + d);
    // Back and forth across second boundaries: the kept second must never leak into another.
    times.push(5000, 4999, 5000, 1_765_000_000_000, 1_765_000_000_999, 1_764_999_999_999, 1_765_000_001_000);
    for (const ms of times) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('returns strings that later calls do not change', () => {
    const a = isoTime(1_765_000_000_123);
    const b = isoTime(1_765_000_777_456);
    expect([a, b]).toEqual(['2025-12-06T05:46:40.123Z', '2025-12-06T05:59:37.456Z']);
  });

  it('leaves times it has no fast form for to Date: before 1970, after 9999, fractions', () => {
    for (const ms of [-1, -86_400_001, Date.UTC(10000, 0, 1), 1.5, 253402300799999])
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});
