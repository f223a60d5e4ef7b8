// The evaluation worker's poll between jobs follows the gaps it sees (adaptive-spin.ts): jobs
// that come back to back keep the full poll; jobs that come further apart than it could ever
// catch bring it down to none, so a storm of them does not burn the host's CPU polling.
import { describe, expect, it } from 'vitest';
import { AdaptiveSpin, MAX_SPIN_NS } from '../../../runtime/engine/worker/adaptive-spin.ts';

describe('the worker poll between jobs', () => {
  it('starts full, and stays full while jobs come within it', () => {
    const spin = new AdaptiveSpin();
    expect(spin.ns).toBe(MAX_SPIN_NS);
    for (let i = 0; i < 100; i++) spin.record(MAX_SPIN_NS / 3n);
    expect(spin.ns).toBe(MAX_SPIN_NS);
  });

  it('halves after each gap longer than the full poll, down to none', () => {
    const spin = new AdaptiveSpin();
    const seen: bigint[] = [];
    for (let i = 0; i < 6; i++) {
      spin.record(MAX_SPIN_NS * 3n); // e.g. a client's round trip between its requests
      seen.push(spin.ns);
    }
    expect(seen).toEqual([
      MAX_SPIN_NS / 2n,
      MAX_SPIN_NS / 4n,
      MAX_SPIN_NS / 8n,
      0n, // under 10 µs: not worth its clock reads
      0n,
      0n,
    ]);
  });

  it('comes back full at the first gap the full poll would have caught', () => {
    const spin = new AdaptiveSpin();
    for (let i = 0; i < 10; i++) spin.record(MAX_SPIN_NS * 10n);
    expect(spin.ns).toBe(0n);
    spin.record(MAX_SPIN_NS); // slept, but a full poll would have seen this job
    expect(spin.ns).toBe(MAX_SPIN_NS);
  });
});
