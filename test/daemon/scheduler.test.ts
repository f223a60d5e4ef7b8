// The fair scheduler with controllable tasks (the only place a fake evaluation is used):
// round-robin across VMs, caps, bounded queues, drain; jobs decided on the main thread need no
// worker's slot; and, with an injected clock, what each VM's jobs cost: least recent cost first,
// and a share of one core under contention.
import { describe, expect, it } from 'vitest';
import {
  FairScheduler,
  REAL_CLOCK,
  type SchedulerClock,
  type SchedulerLimits,
  type SchedulerOptions,
} from '../../runtime/server/scheduler/fair-scheduler.ts';

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

  it('serves queued VMs of equal cost round-robin, not first-come-first-served', async () => {
    // No time passes: every job costs the same (nothing), so the order is round-robin's.
    const s = new FairScheduler(limits({ globalConcurrency: 1, perKeyInFlight: 1 }), { clock: new FakeClock() });
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

  it('submitHere: a task that settles as it runs gives its result as a value, its slot freed and charged before it returns', async () => {
    const clock = new FakeClock();
    const s = new FairScheduler(limits({ vmShare: 0.5, vmBurstMs: 10, contentionWindowMs: 1000 }), { clock });
    const b = s.submit('b', async () => 'b'); // another VM is asking
    expect(b.ok && (await b.result)).toBe('b');
    // 30 ms of work, done as the task runs (a decision made on this thread).
    const a0 = s.submitHere('a', () => {
      expect(s.inFlight).toBe(1);
      clock.t += 30;
      return 'a0';
    });
    expect(a0).toEqual({ ok: true, result: 'a0' });
    expect(s.inFlight).toBe(0);
    // Charged: 10 - 30 = -20 ms, so the next is held back for 41 ms while b counts as asking.
    const a1 = s.submitHere('a', () => 'a1');
    expect(a1.ok && a1.result instanceof Promise).toBe(true);
    expect(s.pacedTotal).toBe(1);
    await clock.advance(40);
    expect(s.queued).toBe(1);
    await clock.advance(1);
    expect(a1.ok && (await a1.result)).toBe('a1');
    expect(s.inFlight).toBe(0);
    // A task that throws as it runs rejects its result, and frees its slot.
    const bad = s.submitHere('c', () => {
      throw new Error('boom');
    });
    await expect(bad.ok ? bad.result : null).rejects.toThrow('boom');
    expect(s.inFlight).toBe(0);
    // submit() keeps its promise, whatever the task returns.
    const viaSubmit = s.submit('d', (() => 'd') as unknown as () => Promise<string>);
    expect(viaSubmit.ok && viaSubmit.result instanceof Promise && (await viaSubmit.result)).toBe('d');
  });

  it('frees the slot of a job that waited in the queue too, and starts the next in it', async () => {
    // The first starts at once (nothing queued), the others wait for the one slot.
    const s = new FairScheduler(limits({ globalConcurrency: 1 }));
    const atStart: Array<[string, number]> = [];
    const jobs = ['a', 'b', 'c'].map((k) =>
      s.submit(k, async () => {
        atStart.push([k, s.inFlight]);
        return k;
      }),
    );
    expect(s.queued).toBe(2);
    expect(await Promise.all(jobs.map((j) => (j.ok ? j.result : null)))).toEqual(['a', 'b', 'c']);
    // Each ran alone in the slot, and the last one freed it.
    expect(atStart).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
    expect([s.inFlight, s.queued]).toEqual([0, 0]);
  });
});

/** The caller's answer to "would a job of this key start inline now?", and how often it was asked. */
function probe(answer: (key: string) => boolean): { startsInline: (key: string) => boolean; asked: string[] } {
  const asked: string[] = [];
  return {
    startsInline: (key) => {
      asked.push(key);
      return answer(key);
    },
    asked,
  };
}

describe('FairScheduler: a job decided on the main thread holds no slot', () => {
  /** One slot, held by a hostile VM's job that went to a worker and has not come back. */
  function slotTaken(over: Partial<SchedulerLimits> = {}, clock?: FakeClock) {
    const s = new FairScheduler(limits({ globalConcurrency: 1, perKeyInFlight: 1, ...over }), clock ? { clock } : {});
    const log: string[] = [];
    const hostile = gate(log, 'h0');
    const h = s.submit('hostile', hostile.task);
    expect(s.inFlight).toBe(1);
    return { s, log, hostile, h };
  }

  it("another VM's inline job starts and settles at once while the only slot is held; a job bound for a worker still waits", async () => {
    const { s, log, hostile, h } = slotTaken();
    const inline = probe((key) => key === 'victim');
    for (let i = 0; i < 3; i++) {
      const v = s.submitHere(
        'victim',
        () => {
          log.push(`v${i}`);
          return `v${i}`;
        },
        undefined,
        undefined,
        inline.startsInline,
      );
      // The value itself: started and settled before submitHere returned, without a slot.
      expect(v).toEqual({ ok: true, result: `v${i}` });
      expect(s.inFlight).toBe(1);
    }
    expect(inline.asked).toEqual(['victim', 'victim', 'victim']);
    // Straight to a worker (the caller says it does not start inline, or says nothing): it waits.
    const w = s.submitHere(
      'worker-bound',
      async () => (log.push('w0'), 'w0'),
      undefined,
      undefined,
      inline.startsInline,
    );
    const x = s.submit('silent', async () => (log.push('x0'), 'x0'));
    await tick();
    expect(log).toEqual(['h0', 'v0', 'v1', 'v2']);
    expect(s.queued).toBe(2);
    hostile.finish();
    expect(h.ok && (await h.result)).toBe('h0');
    expect(w.ok && (await w.result)).toBe('w0');
    expect(x.ok && (await x.result)).toBe('x0');
    expect(log).toEqual(['h0', 'v0', 'v1', 'v2', 'w0', 'x0']);
    expect([s.inFlight, s.queued]).toEqual([0, 0]);
  });

  it('asks nothing while a slot is free: the job takes the slot, as before', () => {
    const s = new FairScheduler(limits({ globalConcurrency: 1 }));
    const inline = probe(() => true);
    const v = s.submitHere(
      'victim',
      () => {
        expect(s.inFlight).toBe(1);
        return 'v0';
      },
      undefined,
      undefined,
      inline.startsInline,
    );
    expect(v).toEqual({ ok: true, result: 'v0' });
    expect(inline.asked).toEqual([]);
    expect(s.inFlight).toBe(0);
  });

  it("an inline job that goes on in a worker holds a slot from then on, above the cap; its key's next inline job starts once it is back, the slot still held", async () => {
    const { s, log, hostile } = slotTaken();
    const inline = probe(() => true);
    // v0 starts inline without a slot, then goes on in a worker (its task returns a promise).
    const v0Worker = gate(log, 'v0');
    const v0 = s.submitHere('victim', v0Worker.task, undefined, undefined, inline.startsInline);
    expect(log).toEqual(['h0', 'v0']);
    expect(s.inFlight).toBe(2);
    // v1 waits for its key's cap (1), not for the slot: queued.
    const v1 = s.submitHere('victim', () => (log.push('v1'), 'v1'), undefined, undefined, inline.startsInline);
    expect(v1.ok && v1.result instanceof Promise).toBe(true);
    expect(s.queued).toBe(1);
    v0Worker.finish();
    expect(v0.ok && (await v0.result)).toBe('v0');
    // Back under the cap, with the only slot still the hostile's: v1 starts, inline.
    expect(v1.ok && (await v1.result)).toBe('v1');
    expect(log).toEqual(['h0', 'v0', 'v1']);
    expect([s.inFlight, s.queued]).toEqual([1, 0]);
    hostile.finish();
    await s.drain();
  });

  it('a queued job whose answer turns to inline starts without a slot at the next pump', async () => {
    const { s, log, hostile } = slotTaken();
    let backingOff = true;
    const inline = probe(() => !backingOff);
    const v = s.submitHere('victim', () => (log.push('v0'), 'v0'), undefined, undefined, inline.startsInline);
    expect(s.queued).toBe(1);
    backingOff = false;
    // Any submission pumps first: the victim's job starts before the newcomer's.
    const w = s.submitHere('other', () => (log.push('w0'), 'w0'), undefined, undefined, inline.startsInline);
    expect(w).toEqual({ ok: true, result: 'w0' });
    expect(v.ok && (await v.result)).toBe('v0');
    expect(log).toEqual(['h0', 'v0', 'w0']);
    hostile.finish();
    await s.drain();
  });

  it('retry() starts a queued job whose answer turned to inline, with nothing else submitted', async () => {
    const { s, log, hostile } = slotTaken();
    let budgetSpent = true;
    const inline = probe(() => !budgetSpent);
    const v = s.submitHere('victim', () => (log.push('v0'), 'v0'), undefined, undefined, inline.startsInline);
    expect(s.queued).toBe(1);
    budgetSpent = false; // the main thread's budget was renewed: the daemon calls retry()
    s.retry();
    expect(s.queued).toBe(0);
    expect(v.ok && (await v.result)).toBe('v0');
    expect(log).toEqual(['h0', 'v0']);
    hostile.finish();
    await s.drain();
  });

  it("holds an inline job to its VM's share as any other while the slot is held", async () => {
    const clock = new FakeClock();
    const { s, log, hostile } = slotTaken({ vmShare: 0.5, vmBurstMs: 10, contentionWindowMs: 1000 }, clock);
    const inline = probe(() => true);
    // 30 ms of inline work: 10 - 30 = -20, with the hostile asking.
    const a0 = s.submitHere(
      'a',
      () => {
        clock.t += 30;
        return (log.push('a0'), 'a0');
      },
      undefined,
      undefined,
      inline.startsInline,
    );
    expect(a0).toEqual({ ok: true, result: 'a0' });
    const a1 = s.submitHere('a', () => (log.push('a1'), 'a1'), undefined, undefined, inline.startsInline);
    expect(s.pacedTotal).toBe(1);
    await clock.advance(40);
    expect(log).toEqual(['h0', 'a0']);
    await clock.advance(1);
    expect(a1.ok && (await a1.result)).toBe('a1');
    expect(log).toEqual(['h0', 'a0', 'a1']);
    expect(s.inFlight).toBe(1);
    hostile.finish();
    await s.drain();
  });
});

/** Time that moves only when the test says, with the timers due by then fired in order. */
class FakeClock implements SchedulerClock {
  t = 0;
  private next = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): number {
    this.timers.set(++this.next, { at: this.t + ms, fn });
    return this.next;
  }

  clearTimer(timer: unknown): void {
    this.timers.delete(timer as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time on by `ms`, firing each timer due on the way, then lets promise callbacks run. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, v]) => v.at <= end).sort((x, y) => x[1].at - y[1].at)[0];
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
      await tick();
    }
    this.t = end;
    await tick();
  }
}

/** A task that takes `ms` of the fake clock's time once the test finishes it. */
function costly(
  clock: FakeClock,
  log: string[],
  name: string,
  ms: number,
): { task: () => Promise<string>; finish: () => Promise<void> } {
  const g = gate(log, name);
  return {
    task: g.task,
    finish: async () => {
      await clock.advance(ms);
      g.finish();
      await tick();
      await tick();
    },
  };
}

/**
 * A scheduler on a fake clock where VM "b" has just run a job of no cost: from now on, within
 * the contention window, another VM ("a") is held to its share.
 */
async function afterBAsked(
  over: Partial<SchedulerLimits>,
  options: Omit<SchedulerOptions, 'clock'> = {},
): Promise<{ clock: FakeClock; s: FairScheduler; log: string[] }> {
  const clock = new FakeClock();
  const s = new FairScheduler(limits(over), { clock, ...options });
  const log: string[] = [];
  const b0 = costly(clock, log, 'b0', 0);
  s.submit('b', b0.task);
  await b0.finish();
  return { clock, s, log };
}

const RATE_LIMITED = 'rate-limited';
const within = (deadlineMs: number) => ({ deadlineMs, rateLimited: (ms: number) => `${RATE_LIMITED} ${ms}` });

describe('FairScheduler cost accounting', () => {
  it('serves the VM with the least recent cost first', async () => {
    const clock = new FakeClock();
    const s = new FairScheduler(limits({ globalConcurrency: 1, vmShare: 1 }), { clock });
    const log: string[] = [];
    const jobs = new Map<string, ReturnType<typeof costly>>();
    const add = (key: string, name: string, ms: number): void => {
      const j = costly(clock, log, name, ms);
      jobs.set(name, j);
      expect(s.submit(key, j.task).ok).toBe(true);
    };
    add('a', 'a0', 50);
    add('a', 'a1', 50);
    add('a', 'a2', 50);
    add('b', 'b0', 1);
    add('b', 'b1', 1);
    add('b', 'b2', 1);
    await tick();
    for (let i = 0; i < 6; i++) await jobs.get(log[log.length - 1]!)!.finish();
    // Round-robin would have been a0 b0 a1 b1 a2 b2: b's 1 ms jobs go ahead of a's 50 ms ones.
    expect(log).toEqual(['a0', 'b0', 'b1', 'b2', 'a1', 'a2']);
    await s.drain();
  });

  it('holds a VM over its share back while another asks, and starts it again once its bucket refills', async () => {
    const paced: string[] = [];
    const { clock, s, log } = await afterBAsked(
      { vmShare: 0.5, vmBurstMs: 10, contentionWindowMs: 1000 },
      { onPaced: (k) => paced.push(k) },
    );
    const a0 = costly(clock, log, 'a0', 30);
    s.submit('a', a0.task);
    const a1 = costly(clock, log, 'a1', 0);
    const second = s.submit('a', a1.task, within(10_000));
    await tick();
    // a0 (30 ms) finishes: the bucket had 10, refilled 15 during it, capped at 10: 10 - 30 = -20.
    await a0.finish();
    expect(log).toEqual(['b0', 'a0']);
    expect(paced).toEqual(['a']);
    expect(s.pacedTotal).toBe(1);
    expect(s.pacedKeys).toBe(1);
    expect(clock.pendingTimers).toBe(1);
    // At 0.5 ms a ms, -20 is positive again after 40 ms (and the 1 ms past it).
    await clock.advance(40);
    expect(log).toEqual(['b0', 'a0']);
    // Another VM is not held back meanwhile.
    const b1 = costly(clock, log, 'b1', 0);
    s.submit('b', b1.task);
    await tick();
    expect(log).toEqual(['b0', 'a0', 'b1']);
    await b1.finish();
    await clock.advance(1);
    expect(log).toEqual(['b0', 'a0', 'b1', 'a1']);
    expect(s.pacedKeys).toBe(0);
    await a1.finish();
    expect(second.ok && (await second.result)).toBe('a1');
    expect(clock.pendingTimers).toBe(0);
  });

  it('never holds back a VM that is alone, however much it uses', async () => {
    const clock = new FakeClock();
    const s = new FairScheduler(limits({ vmShare: 0.1, vmBurstMs: 1, contentionWindowMs: 1000 }), { clock });
    const log: string[] = [];
    for (let i = 0; i < 10; i++) {
      const j = costly(clock, log, `a${i}`, 100);
      const r = s.submit('a', j.task, within(5));
      await tick();
      expect(log).toHaveLength(i + 1);
      await j.finish();
      expect(r.ok && (await r.result)).toBe(`a${i}`);
    }
    expect(s.pacedTotal).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a VM that used its share alone has no burst left when another arrives, but no debt either', async () => {
    const clock = new FakeClock();
    const s = new FairScheduler(limits({ vmShare: 0.5, vmBurstMs: 10, contentionWindowMs: 1000 }), { clock });
    const log: string[] = [];
    const a0 = costly(clock, log, 'a0', 1000);
    s.submit('a', a0.task);
    await a0.finish();
    await clock.advance(2000); // b's arrival is past any window a0 could have seen
    const b0 = costly(clock, log, 'b0', 0);
    s.submit('b', b0.task);
    await b0.finish();
    // a's bucket: full again after 2 s alone (20 ms of refill), so a1 starts at once.
    const a1 = costly(clock, log, 'a1', 100);
    s.submit('a', a1.task);
    await a1.finish();
    const a2 = costly(clock, log, 'a2', 0);
    s.submit('a', a2.task);
    await tick();
    // a1 cost 100 while b was asking: 10 + 50 (capped at 10) - 100 = -90: held for 181 ms.
    expect(log).toEqual(['a0', 'b0', 'a1']);
    await clock.advance(180);
    expect(log).toEqual(['a0', 'b0', 'a1']);
    await clock.advance(1);
    expect(log).toEqual(['a0', 'b0', 'a1', 'a2']);
  });

  it('lets a VM go on once the other stops asking, without waiting for its bucket', async () => {
    const { clock, s, log } = await afterBAsked({ vmShare: 0.01, vmBurstMs: 1, contentionWindowMs: 200 });
    const a0 = costly(clock, log, 'a0', 50);
    s.submit('a', a0.task);
    const a1 = costly(clock, log, 'a1', 0);
    s.submit('a', a1.task);
    await a0.finish(); // at 50 ms: -49 at 0.01 a ms would be ~5 s
    expect(log).toEqual(['b0', 'a0']);
    await clock.advance(149);
    expect(log).toEqual(['b0', 'a0']);
    await clock.advance(1); // b asked at 0: the window ends at 200
    expect(log).toEqual(['b0', 'a0', 'a1']);
  });

  it("refuses a held-back job at its deadline, with the time until its VM's bucket is positive", async () => {
    const { clock, s, log } = await afterBAsked({ vmShare: 0.5, vmBurstMs: 10, contentionWindowMs: 1000 });
    const a0 = costly(clock, log, 'a0', 30);
    s.submit('a', a0.task);
    const late = s.submit('a', gate(log, 'a1').task, within(50));
    const later = s.submit('a', gate(log, 'a2').task, within(10_000));
    await a0.finish(); // at 30 ms, bucket -20
    // a1's deadline (50 ms from its submission at 0) passes at 50: bucket -20 + 10 = -10: 21 ms to go.
    await clock.advance(20);
    expect(late.ok && (await late.result)).toBe(`${RATE_LIMITED} 21`);
    expect(s.queued).toBe(1);
    await clock.advance(21);
    expect(log).toEqual(['b0', 'a0', 'a2']);
    expect(later.ok).toBe(true);
  });

  it("starts a held-back VM as soon as the other's last job is refused and nobody else is asking", async () => {
    const clock = new FakeClock();
    const s = new FairScheduler(limits({ vmShare: 0.01, vmBurstMs: 1, contentionWindowMs: 100 }), { clock });
    const log: string[] = [];
    const a0 = gate(log, 'a0');
    const b0 = gate(log, 'b0');
    s.submit('b', b0.task);
    s.submit('a', a0.task);
    const b1 = s.submit('b', gate(log, 'b1').task, within(300));
    const a1 = s.submit('a', gate(log, 'a1').task, within(10_000));
    await clock.advance(10);
    b0.finish();
    a0.finish();
    await tick();
    await tick();
    // Both at -9: each held back while the other has work queued.
    expect(s.pacedKeys).toBe(2);
    expect(log).toEqual(['b0', 'a0']);
    // b1 is refused at 300; b asked last at 0, so nobody else is asking any more: a1 starts.
    await clock.advance(290);
    expect(b1.ok && (await b1.result)).toMatch(RATE_LIMITED);
    expect(log).toEqual(['b0', 'a0', 'a1']);
    expect(a1.ok).toBe(true);
  });

  it('drain starts what is held back and resolves', async () => {
    const { clock, s, log } = await afterBAsked({ vmShare: 0.01, vmBurstMs: 1, contentionWindowMs: 1000 });
    const a0 = costly(clock, log, 'a0', 100);
    s.submit('a', a0.task);
    const a1 = costly(clock, log, 'a1', 0);
    const held = s.submit('a', a1.task, within(60_000));
    await a0.finish();
    expect(log).toEqual(['b0', 'a0']);
    expect(clock.pendingTimers).toBe(1);
    let drained = false;
    const d = s.drain().then(() => (drained = true));
    await tick();
    expect(log).toEqual(['b0', 'a0', 'a1']);
    expect(clock.pendingTimers).toBe(0);
    await a1.finish();
    await d;
    expect(drained).toBe(true);
    expect(held.ok && (await held.result)).toBe('a1');
  });

  it("no timer of the scheduler's keeps the process alive", async () => {
    // Each timer the real clock makes, as made: asked whether it holds the process (hasRef), not
    // counted among the process's timers, which other test files' timers change meanwhile.
    const made: NodeJS.Timeout[] = [];
    const clock: SchedulerClock = {
      now: REAL_CLOCK.now,
      setTimer: (fn, ms) => {
        const t = REAL_CLOCK.setTimer(fn, ms) as NodeJS.Timeout;
        made.push(t);
        return t;
      },
      clearTimer: REAL_CLOCK.clearTimer,
    };
    // A share so small that the held job would wait for hours.
    const s = new FairScheduler(limits({ vmShare: 1e-6, vmBurstMs: 1, contentionWindowMs: 600_000 }), { clock });
    expect(s.submit('b', async () => 'b').ok).toBe(true);
    const a0 = s.submit('a', () => new Promise<string>((r) => setTimeout(() => r('a0'), 5)));
    const a1 = s.submit('a', async () => 'a1', within(3_600_000));
    expect(a0.ok && (await a0.result)).toBe('a0');
    await tick();
    expect(s.pacedKeys).toBe(1);
    expect(made).toHaveLength(1);
    expect(made[0]!.hasRef()).toBe(false);
    await s.drain();
    expect(a1.ok && (await a1.result)).toBe('a1');
  });

  it('rejects a nonsense share with the key named', () => {
    expect(() => new FairScheduler(limits({ vmShare: 0 }))).toThrow(/vmShare/);
    expect(() => new FairScheduler(limits({ vmBurstMs: Number.NaN }))).toThrow(/vmBurstMs/);
  });

  it('charges what a job leaves behind (priced from its result) with its wall time', async () => {
    const { clock, s, log } = await afterBAsked({ vmShare: 0.5, vmBurstMs: 10, contentionWindowMs: 1000 });
    // a0 holds its slot 2 ms and leaves 28 ms behind (e.g. the garbage collection of what it dropped).
    const a0 = costly(clock, log, 'a0', 2);
    s.submit('a', a0.task, undefined, (result) => (result === 'a0' ? 28 : 0));
    const a1 = costly(clock, log, 'a1', 0);
    s.submit('a', a1.task);
    await a0.finish();
    // 10 (refilled 1, capped at 10) - 30 = -20: held back for 41 ms, as a 30 ms job would be.
    expect(log).toEqual(['b0', 'a0']);
    expect(s.pacedTotal).toBe(1);
    await clock.advance(40);
    expect(log).toEqual(['b0', 'a0']);
    await clock.advance(1);
    expect(log).toEqual(['b0', 'a0', 'a1']);
    await a1.finish();
  });

  it('a price that throws, or is not a positive number, charges nothing and still frees the slot', async () => {
    const clock = new FakeClock();
    const s = new FairScheduler(limits({ vmShare: 0.5, vmBurstMs: 10, contentionWindowMs: 1000 }), { clock });
    const log: string[] = [];
    s.submit('b', costly(clock, log, 'b0', 0).task);
    const prices = [
      (): number => {
        throw new Error('pricing failed');
      },
      (): number => Number.NaN,
      (): number => -1000,
      (): number => Number.POSITIVE_INFINITY,
    ];
    for (const [i, price] of prices.entries()) {
      const j = costly(clock, log, `a${i}`, 0);
      const r = s.submit('a', j.task, undefined, price);
      await tick();
      await j.finish();
      expect(r.ok && (await r.result)).toBe(`a${i}`);
      expect(s.inFlight).toBe(1); // b0 only
    }
    expect(s.pacedTotal).toBe(0);
  });
});
