// The speculative runs' budget counts the main thread's CPU time, not the time the OS ran other
// threads meanwhile (injected clocks: a wall clock and a CPU clock that each test moves by hand).
// The CPU clock is a system call, so it is read only when the wall clock cannot settle a question.
import { describe, expect, it } from 'vitest';
import { CpuSpan, WALL_TIME_SETTLES_MS } from '../../../runtime/engine/speculative/cpu-span.ts';

/** The span so far, as measure() leaves it in the span's fields. */
function measured(span: CpuSpan): { cpuMs: number; wallMs: number } {
  span.measure();
  return { cpuMs: span.cpuMs, wallMs: span.wallMs };
}

function clocks(): { wall: number; cpu: number; cpuReads: number; span: () => CpuSpan } {
  const c = { wall: 0, cpu: 0, cpuReads: 0, span: (): CpuSpan => new CpuSpan(clockFns) };
  const clockFns = { wall: () => c.wall, cpu: () => (c.cpuReads++, c.cpu) };
  return c;
}

describe('a span of CPU time', () => {
  it('a span the OS preempted is charged its CPU time, not the wait', () => {
    const c = clocks();
    const span = c.span();
    c.wall += 30; // 30 ms of wall time, of which the thread ran 1
    c.cpu += 1;
    expect(span.over(2)).toBe(false);
    expect(measured(span)).toEqual({ cpuMs: 1, wallMs: 30 });
    c.cpu += 2; // now the thread itself has run 3 ms
    expect(span.over(2)).toBe(true);
  });

  it('reads the CPU clock only when the wall clock cannot settle it', () => {
    const c = clocks();
    const span = c.span();
    expect(c.cpuReads).toBe(1); // its start
    c.wall += 1.5;
    c.cpu += 1.5;
    expect(span.over(2)).toBe(false); // 1.5 ms of wall time cannot be more than 2 of CPU
    expect(c.cpuReads).toBe(1);
    c.wall = WALL_TIME_SETTLES_MS / 2;
    expect(measured(span)).toEqual({ cpuMs: WALL_TIME_SETTLES_MS / 2, wallMs: WALL_TIME_SETTLES_MS / 2 });
    expect(c.cpuReads).toBe(1);
    c.wall += 5;
    span.measure();
    expect(c.cpuReads).toBe(2);
  });

  it('one injected clock for both is read once per question', () => {
    let reads = 0;
    let t = 0;
    const clock = (): number => (reads++, (t += 1));
    const span = new CpuSpan({ cpu: clock, wall: clock });
    expect(span.over(5)).toBe(false);
    expect(measured(span)).toEqual({ cpuMs: 2, wallMs: 2 });
    expect(reads).toBe(3);
  });

  it('restarts from now', () => {
    const c = clocks();
    const span = c.span();
    c.wall += 10;
    c.cpu += 4;
    expect(measured(span)).toEqual({ cpuMs: 4, wallMs: 10 });
    span.restart();
    c.wall += 3;
    c.cpu += 1;
    expect(measured(span)).toEqual({ cpuMs: 1, wallMs: 3 });
  });
});
