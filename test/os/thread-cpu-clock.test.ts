// The speculative runs' budget is measured on this clock: the calling thread's CPU time. It
// must not count time the thread spends not running (blocked here; on a busy machine, waiting
// for a core), and must count the thread's own work.
import { describe, expect, it } from 'vitest';
import { libc } from '../../runtime/os/libc.ts';
import { threadCpuClock } from '../../runtime/os/thread-cpu-clock.ts';

describe('the thread CPU clock', () => {
  it('does not advance while the thread is blocked, and advances with its work', () => {
    const clock = threadCpuClock();
    expect(clock).not.toBeNull();
    const now = clock!;
    // Blocked for 300 ms of wall time (a futex wait): no CPU time of this thread.
    const before = now();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    expect(now() - before).toBeLessThan(100);
    // Spinning: the clock moves on by the work done (bounded: 1e9 iterations are seconds of CPU).
    const start = now();
    let spun = 0;
    while (now() - start < 5 && spun < 1e9) spun++;
    expect(now() - start).toBeGreaterThanOrEqual(5);
  });

  it('is read from struct timespec as seconds and nanoseconds (CLOCK_REALTIME reads as Date.now())', () => {
    const CLOCK_REALTIME = 0;
    const before = Date.now();
    const ms = libc().clockMs(CLOCK_REALTIME);
    const after = Date.now();
    // Date.now() truncates to whole ms; the clock has the fraction.
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThan(after + 1);
  });
});
