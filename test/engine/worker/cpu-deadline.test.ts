// A worker job's CPU deadline (the simulator's), on injected clocks: it passes on the thread's CPU
// time, or on the wall-clock cap when the thread gets none; between looks it waits as long as the
// CPU time left (a thread's CPU time never runs ahead of the wall clock), and a clock that cannot
// be read counts the wall clock, as the daemon's deadline does.
import { describe, expect, it } from 'vitest';
import { CpuLimit } from '../../../runtime/engine/cpu-limit.ts';
import { CpuDeadline } from '../../../runtime/engine/worker/cpu-deadline.ts';

function clocks(): { cpu: number; wall: number } {
  return { cpu: 0, wall: 0 };
}

/** A 100 ms deadline with a 10x cap, on `t`'s wall clock and the given CPU clock. */
const deadline = (t: { wall: number }, cpu: (() => number) | null): CpuDeadline =>
  new CpuDeadline(cpu, 100, { threadClock: () => null, wallCapFactor: 10, wall: () => t.wall });

describe('a CPU deadline', () => {
  it('passes on CPU time, however little wall time went by', () => {
    const t = clocks();
    const d = deadline(t, () => t.cpu);
    expect(d.next()).toBe(100);
    t.wall = 60;
    t.cpu = 30;
    expect(d.next()).toBe(70); // the CPU time left: it cannot pass sooner
    t.wall = 70;
    t.cpu = 100;
    expect(d.next()).toBe(0);
    expect(d.passed).toBe('cpu');
    expect(d.describe()).toBe(
      "no decision within the 100 ms deadline; the worker's thread had used 100.0 ms of CPU time",
    );
  });

  it('does not pass on wall time below the cap, and passes at the cap', () => {
    const t = clocks();
    const d = deadline(t, () => t.cpu);
    t.wall = 950;
    t.cpu = 10;
    expect(d.next()).toBe(50); // the cap is nearer than the CPU time left
    expect(d.passed).toBeUndefined();
    t.wall = 1000;
    expect(d.next()).toBe(0);
    expect(d.passed).toBe('wall');
    expect(d.describe()).toBe(
      "no decision within the 100 ms deadline: its wall-clock cap of 1000 ms (10x) passed first, the worker's thread having had 10.0 ms of CPU time (the machine is too busy)",
    );
  });

  it('waits at least a millisecond between looks', () => {
    const t = clocks();
    const d = deadline(t, () => t.cpu);
    t.cpu = 99.99;
    t.wall = 99.99;
    expect(d.next()).toBe(1);
  });

  it('counts the wall clock where the thread clock cannot be read, or stops reading', () => {
    const t = clocks();
    const none = deadline(t, null);
    t.wall = 100;
    expect(none.next()).toBe(0);
    expect(none.passed).toBe('cpu');
    t.wall = 0;
    let reads = 0;
    const ended = deadline(t, () => (reads++ === 0 ? 5 : Number.NaN));
    t.wall = 40;
    expect(ended.next()).toBe(60);
    t.wall = 100;
    expect(ended.next()).toBe(0);
    expect(ended.passed).toBe('cpu');
  });
});

describe("a process's CPU limit", () => {
  it('looks again sooner when the process can run on several cores at once', () => {
    const t = clocks();
    const limit = new CpuLimit(() => t.cpu, 30_000, { wallCapMs: 120_000, cpus: 2, wall: () => t.wall });
    expect(limit.next()).toBe(15_000); // two threads may use its 30 s in 15 s
    t.wall = 15_000;
    t.cpu = 29_000;
    expect(limit.next()).toBe(500);
    t.cpu = 30_000;
    expect(limit.next()).toBe(0);
    expect(limit.passed).toBe('cpu');
  });
});
