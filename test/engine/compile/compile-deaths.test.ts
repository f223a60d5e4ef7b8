// The memory of bytes that killed compile processes is bounded: the most recent MAX_REMEMBERED
// hashes, the least recently counted forgotten first, so a stream of distinct crashing uploads
// cannot grow it; a success forgets a hash.
import { describe, expect, it } from 'vitest';
import { CompileDeaths, MAX_REMEMBERED } from '../../../runtime/engine/compile/compile-deaths.ts';

const sha = (i: number): string => i.toString(16).padStart(64, '0');

describe('CompileDeaths', () => {
  it('counts the deaths of one hash and keeps how the last one ended', () => {
    const d = new CompileDeaths();
    expect(d.record(sha(1), ' (SIGSEGV)')).toEqual({ deaths: 1, how: ' (SIGSEGV)' });
    expect(d.record(sha(2), ' (SIGKILL)')).toEqual({ deaths: 1, how: ' (SIGKILL)' });
    expect(d.record(sha(1), ' (exit code 134)')).toEqual({ deaths: 2, how: ' (exit code 134)' });
  });

  it('keeps at most MAX_REMEMBERED hashes, forgetting the least recently counted', () => {
    const d = new CompileDeaths();
    d.record(sha(0), '');
    for (let i = 1; i < MAX_REMEMBERED; i++) d.record(sha(i), '');
    d.record(sha(0), ''); // counted again: now the most recent
    for (let i = 0; i < 10_000; i++) d.record(sha(1000 + i), '');
    expect(d.size).toBe(MAX_REMEMBERED);
    // Everything before the stream is gone, the hash counted twice too: it starts again at one.
    expect(d.record(sha(0), '').deaths).toBe(1);
    expect(d.record(sha(1000 + 9999), '').deaths).toBe(2);
  });

  it('forgets a hash whose bytes compiled', () => {
    const d = new CompileDeaths();
    d.record(sha(1), '');
    d.forget(sha(1));
    expect(d.size).toBe(0);
    expect(d.record(sha(1), '').deaths).toBe(1);
  });
});
