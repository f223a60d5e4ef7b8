// The fair scheduler with controllable tasks (the only place a fake evaluation is used):
// round-robin across VMs, caps, bounded queues, drain.
import { describe, expect, it } from 'vitest';
import { FairScheduler, type SchedulerLimits } from '../../runtime/server/scheduler/fair-scheduler.ts';

/** A task the test finishes by hand, recording start order. */
function gate(log: string[], name: string): { task: () => Promise<string>; finish: () => void } {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return {
    task: async () => {
      log.push(name);
      await done;
      return name;
    },
    finish: () => finish(),
  };
}

const limits = (over: Partial<SchedulerLimits> = {}): SchedulerLimits => ({
  globalConcurrency: 2,
  perKeyInFlight: 1,
  maxQueued: 100,
  maxQueuedPerKey: 50,
  ...over,
});
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('FairScheduler', () => {
  it('a flooding VM holds at most its in-flight cap; another VM starts at once', async () => {
    const s = new FairScheduler(limits());
    const log: string[] = [];
    const flood = Array.from({ length: 20 }, (_, i) => gate(log, `a${i}`));
    for (const g of flood) expect(s.submit('vm-a', g.task).ok).toBe(true);
    await tick();
    expect(log).toEqual(['a0']);
    expect(s.inFlight).toBe(1);
    expect(s.queued).toBe(19);
    const b = gate(log, 'b0');
    const admitted = s.submit('vm-b', b.task);
    await tick();
    expect(log).toEqual(['a0', 'b0']);
    b.finish();
    expect(admitted.ok && (await admitted.result)).toBe('b0');
    for (const g of flood) g.finish();
  });

  it('serves queued VMs round-robin, not first-come-first-served', async () => {
    const s = new FairScheduler(limits({ globalConcurrency: 1, perKeyInFlight: 1 }));
    const log: string[] = [];
    const gates = new Map<string, ReturnType<typeof gate>>();
    const add = (key: string, name: string): void => {
      const g = gate(log, name);
      gates.set(name, g);
      s.submit(key, g.task);
    };
    add('a', 'a0');
    for (let i = 1; i < 4; i++) add('a', `a${i}`);
    for (let i = 0; i < 2; i++) add('b', `b${i}`);
    add('c', 'c0');
    await tick();
    // Finish whatever runs, one at a time, and record the order of starts.
    for (let i = 0; i < 7; i++) {
      const running = log[log.length - 1]!;
      gates.get(running)!.finish();
      await tick();
      await tick();
    }
    expect(log).toEqual(['a0', 'a1', 'b0', 'c0', 'a2', 'b1', 'a3']);
  });

  it('never runs more than the global concurrency', async () => {
    const s = new FairScheduler(limits({ globalConcurrency: 3, perKeyInFlight: 2 }));
    const log: string[] = [];
    const gs = ['a', 'b', 'c', 'd'].flatMap((k) => [0, 1, 2].map((i) => ({ k, g: gate(log, `${k}${i}`) })));
    for (const { k, g } of gs) s.submit(k, g.task);
    await tick();
    expect(s.inFlight).toBe(3);
    expect(log).toHaveLength(3);
    for (const { g } of gs) g.finish();
    await s.drain();
    expect(log).toHaveLength(12);
  });

  it('bounds each VM queue so one VM cannot fill the global queue', async () => {
    const s = new FairScheduler(limits({ globalConcurrency: 1, perKeyInFlight: 1, maxQueued: 10, maxQueuedPerKey: 4 }));
    const log: string[] = [];
    const gs = Array.from({ length: 8 }, (_, i) => gate(log, `a${i}`));
    const results = gs.map((g) => s.submit('a', g.task));
    // 1 running + 4 queued; the rest refused.
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true, true, false, false, false]);
    expect(results[5]).toEqual({ ok: false, reason: 'vm-queue-full' });
    const others = Array.from({ length: 6 }, (_, i) => s.submit(`v${i}`, gate(log, `v${i}`).task));
    expect(others.map((r) => r.ok)).toEqual([true, true, true, true, true, true]);
    expect(s.submit('w', gate(log, 'w').task)).toEqual({ ok: false, reason: 'queue-full' });
    for (const g of gs) g.finish();
  });

  it('drain waits for admitted work and refuses new work', async () => {
    const s = new FairScheduler(limits());
    const log: string[] = [];
    const g = gate(log, 'x');
    const r = s.submit('a', g.task);
    let drained = false;
    const d = s.drain().then(() => (drained = true));
    expect(s.submit('a', gate(log, 'y').task)).toEqual({ ok: false, reason: 'closed' });
    await tick();
    expect(drained).toBe(false);
    g.finish();
    await d;
    expect(drained).toBe(true);
    expect(r.ok && (await r.result)).toBe('x');
  });

  it('a task that throws rejects its own result and frees its slot', async () => {
    const s = new FairScheduler(limits({ globalConcurrency: 1 }));
    const bad = s.submit('a', () => {
      throw new Error('boom');
    });
    const good = s.submit('a', async () => 'fine');
    expect(bad.ok).toBe(true);
    await expect(bad.ok ? bad.result : null).rejects.toThrow('boom');
    expect(good.ok && (await good.result)).toBe('fine');
  });

  it('rejects nonsense limits with the key named', () => {
    expect(() => new FairScheduler(limits({ perKeyInFlight: 0 }))).toThrow(/perKeyInFlight/);
  });
});

describe('FairScheduler slot accounting', () => {
  it('has already freed the slot when the caller sees the result', async () => {
    const s = new FairScheduler(limits());
    const r = s.submit('a', async () => 'x');
    expect(r.ok && (await r.result)).toBe('x');
    expect(s.inFlight).toBe(0);
  });
});
