// The main thread's fair queue (turn-queue.ts) with an injected clock and event loop: a job
// "costs" what it advances the clock by; `checkPhase()` runs the steps deferred before it, as
// Node's check phase runs the immediates queued before it began.
import { describe, expect, it } from 'vitest';
import {
  TurnQueue,
  type TurnClock,
  type TurnQueueLimits,
  type TurnRefusal,
} from '../../runtime/server/scheduler/turn-queue.ts';

class FakeLoop implements TurnClock {
  t = 1000;
  private deferred: Array<() => void> = [];
  now(): number {
    return this.t;
  }
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }
  afterMicrotasks(fn: () => void): void {
    // The jobs here do all their work synchronously: their microtasks are done when they return.
    fn();
  }
  get pending(): number {
    return this.deferred.length;
  }
  /** Runs the steps deferred before this phase; those they defer wait for the next one. */
  checkPhase(): void {
    const fns = this.deferred;
    this.deferred = [];
    for (const fn of fns) fn();
  }
}

const limits = (over: Partial<TurnQueueLimits> = {}): TurnQueueLimits => ({
  maxQueued: 100,
  maxQueuedPerKey: 50,
  contentionWindowMs: 1000,
  maxWaitMs: 10_000,
  turnBudgetMs: 1,
  ...over,
});

function setup(over: Partial<TurnQueueLimits> = {}) {
  const loop = new FakeLoop();
  const refusals: TurnRefusal[] = [];
  const q = new TurnQueue(limits(over), { clock: loop, onRefused: (r) => refusals.push(r) });
  const log: string[] = [];
  /** A request of `key` named `name` that holds the main thread `ms`. */
  const submit = (key: string, name: string, ms = 0.1) =>
    q.submit(key, {
      run: () => {
        log.push(name);
        loop.t += ms;
      },
      refuse: (reason) => log.push(`${name} refused (${reason})`),
    });
  return { loop, q, log, refusals, submit };
}

describe('TurnQueue', () => {
  it('one key alone runs each request at once, in the callback that read it: nothing deferred, nothing queued', () => {
    const { loop, q, log, submit } = setup();
    for (let i = 0; i < 20; i++) expect(submit('vm-a', `a${i}`, 0.2)).toBe('ran');
    expect(log).toHaveLength(20);
    expect(loop.pending).toBe(0);
    expect(q.queued).toBe(0);
    // Its cost was measured all the same (20 x 0.2 ms, barely decayed).
    expect(q.costOf('vm-a')).toBeGreaterThan(3.9);
  });

  it('while another key asks, requests wait for the check phase, and the key that cost least goes first', () => {
    const { loop, log, submit } = setup();
    for (let i = 0; i < 10; i++) submit('vm-flood', `warm${i}`, 0.2);
    expect(submit('vm-victim', 'v-warm', 0.2)).toBe('queued'); // the flood asked just now
    // The flood goes on (the victim joined at its cost: it has cost more since).
    for (let i = 10; i < 20; i++) submit('vm-flood', `warm${i}`, 0.2);
    while (loop.pending > 0) loop.checkPhase();
    log.length = 0;
    // One poll reads three of the flood's requests and then one of the victim's.
    expect(submit('vm-flood', 'f0', 0.2)).toBe('queued'); // the victim asked just now
    expect(submit('vm-flood', 'f1', 0.2)).toBe('queued');
    expect(submit('vm-flood', 'f2', 0.2)).toBe('queued');
    expect(submit('vm-victim', 'v0', 0.2)).toBe('queued');
    expect(log).toEqual([]);
    loop.checkPhase();
    // Victim first; then the flood's in order, up to the turn's budget (1 ms).
    expect(log).toEqual(['v0', 'f0', 'f1', 'f2']);
  });

  it('a key that starts flooding after a quiet while does not go first until its cost catches up: it joins at the least cost of the keys asking', () => {
    const { loop, q, log, submit } = setup({ turnBudgetMs: 100 });
    // A victim asking one 0.2 ms request every 2 ms for 3 s (~0.4 s of decayed cost), the flood quiet.
    for (let i = 0; i < 1500; i++) {
      submit('vm-victim', `warm${i}`, 0.2);
      loop.checkPhase();
      loop.t += 1.8;
    }
    const victimCost = q.costOf('vm-victim');
    expect(victimCost).toBeGreaterThan(100);
    log.length = 0;
    // The flood arrives: one poll reads five of its 0.5 ms requests, then one of the victim's.
    for (let i = 0; i < 5; i++) expect(submit('vm-flood', `f${i}`, 0.5)).toBe('queued');
    expect(q.costOf('vm-flood')).toBeCloseTo(victimCost, 6);
    submit('vm-victim', 'v0', 0.2);
    loop.checkPhase();
    // Equal costs: the flood's oldest first; then it has cost more, and the victim goes.
    expect(log).toEqual(['f0', 'v0', 'f1', 'f2', 'f3', 'f4']);
  });

  it('keys of equal cost are served oldest request first', () => {
    const { loop, log, submit } = setup();
    submit('vm-a', 'a-warm', 0);
    expect(submit('vm-b', 'b0', 0)).toBe('queued');
    submit('vm-a', 'a0', 0);
    submit('vm-c', 'c0', 0);
    loop.checkPhase();
    expect(log).toEqual(['a-warm', 'b0', 'a0', 'c0']);
  });

  it('past its budget a turn yields: a cheap request read in the next poll goes before the rest of the queue', () => {
    const { loop, q, log, submit } = setup({ turnBudgetMs: 1 });
    for (let i = 0; i < 10; i++) submit('vm-flood', `warm${i}`, 0.5);
    log.length = 0;
    submit('vm-victim', 'v-warm', 0.1); // queued (the flood asks): runs in the next phase
    for (let i = 0; i < 8; i++) submit('vm-flood', `f${i}`, 0.5);
    loop.checkPhase();
    // v-warm first (least cost), then the flood's until the phase has used its 1 ms.
    expect(log).toEqual(['v-warm', 'f0', 'f1']);
    expect(q.queued).toBe(6);
    // The next poll reads another request of the victim: it goes before the flood's queued six.
    submit('vm-victim', 'v1', 0.1);
    loop.checkPhase();
    expect(log.slice(3)).toEqual(['v1', 'f2', 'f3']);
    // Nothing is lost: the rest run in later turns, and the steps stop when the queue is empty.
    for (let i = 0; i < 10 && loop.pending > 0; i++) loop.checkPhase();
    expect(log.slice(6)).toEqual(['f4', 'f5', 'f6', 'f7']);
    expect(q.queued).toBe(0);
    expect(loop.pending).toBe(0);
  });

  it('refuses past its bounds, per key and in all, without running the request', () => {
    const { q, log, refusals, submit } = setup({ maxQueuedPerKey: 2, maxQueued: 3 });
    submit('vm-a', 'a-warm');
    expect(submit('vm-b', 'b0')).toBe('queued');
    expect(submit('vm-b', 'b1')).toBe('queued');
    expect(submit('vm-b', 'b2')).toBe('vm-queue-full');
    expect(submit('vm-a', 'a0')).toBe('queued');
    expect(submit('vm-c', 'c0')).toBe('queue-full');
    expect(refusals).toEqual(['vm-queue-full', 'queue-full']);
    expect(q.queued).toBe(3);
    expect(log).toEqual(['a-warm']);
  });

  it('a request that waited past its deadline is refused, never run; the others run', () => {
    const { loop, log, refusals, submit } = setup({ maxWaitMs: 50 });
    submit('vm-a', 'a-warm');
    submit('vm-b', 'b0');
    loop.t += 10;
    submit('vm-a', 'a0');
    loop.t += 45; // b0 has waited 55 ms, a0 45 ms
    loop.checkPhase();
    expect(log).toEqual(['a-warm', 'b0 refused (deadline)', 'a0']);
    expect(refusals).toEqual(['deadline']);
  });

  it('once no other key has asked for the contention window, a key runs at once again', () => {
    const { loop, log, submit } = setup({ contentionWindowMs: 1000 });
    submit('vm-a', 'a0');
    expect(submit('vm-b', 'b0')).toBe('queued');
    loop.checkPhase();
    expect(submit('vm-a', 'a1')).toBe('queued'); // b asked just now
    loop.checkPhase();
    loop.t += 1001;
    expect(submit('vm-a', 'a2')).toBe('ran');
    expect(log).toEqual(['a0', 'b0', 'a1', 'a2']);
  });

  it('forgets keys that have been idle for a while (bounded memory as VMs come and go)', () => {
    const { loop, q, submit } = setup({ contentionWindowMs: 100 });
    for (let i = 0; i < 50; i++) {
      submit(`vm-${i}`, `r${i}`);
      loop.checkPhase();
    }
    expect(q.keys).toBe(50);
    loop.t += 10_000; // past the window and four cost half-lives
    submit('vm-new', 'n0');
    loop.checkPhase();
    expect(q.keys).toBe(1);
    expect(q.costOf('vm-3')).toBe(0);
  });

  it('records the longest wait, for the metrics, and starts again after each read', () => {
    const { loop, q, submit } = setup();
    submit('vm-a', 'a0');
    submit('vm-b', 'b0');
    loop.t += 7;
    loop.checkPhase();
    expect(q.takeLongestWait()).toBe(7);
    expect(q.takeLongestWait()).toBe(0);
  });

  it('refuses limits that are not positive integers, with the limit named', () => {
    expect(() => new TurnQueue(limits({ maxQueued: 0 }))).toThrow(/maxQueued must be a positive integer, got 0/);
    expect(() => new TurnQueue(limits({ maxWaitMs: Number.NaN }))).toThrow(/maxWaitMs must be a number >= 0/);
  });
});
