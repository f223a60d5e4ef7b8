// The speculative runs' budget is measured on this clock: the calling thread's CPU time. It
// must not count time the thread spends not running (blocked here; on a busy machine, waiting
// for a core), and must count the thread's own work.
import { describe, expect, it } from 'vitest';
import { libc } from '../../runtime/os/libc.ts';
import { otherThreadCpuClock, processCpuClock, threadCpuClock } from '../../runtime/os/thread-cpu-clock.ts';
import { currentThreadId } from '../../runtime/os/thread-id.ts';
import { readProcStat } from '../../runtime/os/proc-stat.ts';
import { spawnChild } from '../support/processes/children.ts';
import { ChildOutput, waitUntil } from '../support/wait.ts';

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

describe("another thread's and another process's CPU clock", () => {
  it("reads this thread's clock by its kernel id as the calling thread's clock does", () => {
    const own = threadCpuClock()!;
    const byId = otherThreadCpuClock(currentThreadId());
    expect(byId).not.toBeNull();
    const a = own();
    const b = byId!();
    const c = own();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(b).toBeLessThanOrEqual(c);
  });

  it("reads a child's CPU time: it advances while the child spins, and stands while it is stopped", async () => {
    const child = spawnChild('sh', ['-c', 'echo spinning; while :; do :; done']);
    await new ChildOutput(child).until('spinning\n');
    const clock = processCpuClock(child.pid!);
    expect(clock).not.toBeNull();
    const spun = clock!();
    await waitUntil(() => clock!() > spun + 20, 'the spinning child to use 20 ms of CPU time');
    process.kill(child.pid!, 'SIGSTOP');
    await waitUntil(() => readProcStat(child.pid!)?.state === 'T', 'the child to be stopped');
    const stopped = clock!();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    expect(clock!()).toBe(stopped);
  });

  it('gives null for a thread that is not one of this process', () => {
    expect(otherThreadCpuClock(1)).toBeNull();
  });
});
