// Decision ids are UUIDv7: well-formed, carrying their millisecond, ordered by it, unique.
import { describe, expect, it } from 'vitest';
import { newDecisionId } from '../../runtime/server/request/decision-id.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('decision ids', () => {
  it('are RFC 9562 version 7 UUIDs whose first 48 bits are the given millisecond', () => {
    const at = Date.UTC(2026, 10, 27, 16, 0, 0, 123);
    const id = newDecisionId(at);
    expect(id).toMatch(V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('sort by time as strings, and never repeat (across refills of the random pool)', () => {
    const ids = Array.from({ length: 2_000 }, (_, i) => newDecisionId(1_800_000_000_000 + Math.floor(i / 10)));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(V7);
    const byTime = ids.map((id, i) => [Math.floor(i / 10), id] as const);
    for (let i = 10; i < byTime.length; i += 10) expect(byTime[i]![1] > byTime[i - 1]![1]).toBe(true);
  });
});
