// The main thread's fair queue (turn-queue.ts) with an injected clock and event loop: a job
// "costs" what it advances the clock by; `checkPhase()` runs the steps deferred before it, as
// Node's check phase runs the immediates queued before it began.
import { describe, expect, it } from 'vitest';
import {
  ATTRIBUTION_WINDOW_MS,
  TurnQueue,
  type TurnClock,
  type TurnQueueLimits,
  type TurnRefusal,
} from '../../runtime/server/scheduler/turn-queue.ts';

class FakeLoop implements TurnClock {
  t = 1000;
  /** The main thread's busy time: the jobs' own, and what work() adds outside them. */
  busy = 0;
  private deferred: Array<() => void> = [];
  private timers: Array<{ at: number; fn: () => void }> = [];
  now(): number {
    return this.t;
  }
  busyMs(): number {
    return this.busy;
  }
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }
  /** Hooks waiting for the end of a task (endTask()), when a test holds them. */
  holdMicrotasks = false;
  private afterTask: Array<() => void> = [];
  afterMicrotasks(fn: () => void): void {
    // The jobs here do all their work synchronously: their microtasks are done when they return.
    if (this.holdMicrotasks) this.afterTask.push(fn);
    else fn();
  }
  /** The running task's microtasks are done. */
  endTask(): void {
    const fns = this.afterTask;
    this.afterTask = [];
    for (const fn of fns) fn();
  }
  setTimer(fn: () => void, ms: number): unknown {
    const timer = { at: this.t + ms, fn };
    this.timers.push(timer);
    return timer;
  }
  clearTimer(timer: unknown): void {
    this.timers = this.timers.filter((t) => t !== timer);
  }
  get pending(): number {
    return this.deferred.length;
  }
  get timersArmed(): number {
    return this.timers.length;
  }
  /** The main thread busy `ms` (a job's own work, or the work around it: read, parse, audit, answer). */
  spend(ms: number): void {
    this.t += ms;
    this.busy += ms;
  }
  /** Idle time passes: the timers due fire, each at its time. */
  idle(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = until;
  }
  /** Runs the steps deferred before this phase; those they defer wait for the next one. */
  checkPhase(): void {
    const fns = this.deferred;
    this.deferred = [];
    for (const fn of fns) fn();
  }
  /** Check phases until no step is deferred (each time `between` runs first: a poll). */
  drain(between = (): void => {}): void {
    for (let i = 0; i < 10_000 && this.pending > 0; i++) {
      between();
      this.checkPhase();
    }
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
  const paced: string[] = [];
  const q = new TurnQueue(limits(over), {
    clock: loop,
    onRefused: (r) => refusals.push(r),
    onPaced: (key) => paced.push(key),
  });
  const log: string[] = [];
  /** A request of `key` named `name` that holds the main thread `ms`. */
  const submit = (key: string, name: string, ms = 0.1) =>
    q.submit(key, {
      run: () => {
        log.push(name);
        loop.spend(ms);
      },
      refuse: (reason, retryAfterMs) =>
        log.push(
          `${name} refused (${reason}${reason === 'vm-rate-limited' ? `, ${Math.round(retryAfterMs)} ms` : ''})`,
        ),
    });
  return { loop, q, log, refusals, paced, submit };
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

describe("TurnQueue: a key's share of the main thread while another asks", () => {
  /** Pacing on: half of the thread, a 10 ms bucket. */
  const pacing = (over: Partial<TurnQueueLimits> = {}) => setup({ share: 0.5, burstMs: 10, ...over });

  it('a flooding key is held to its share while another key asks: its requests wait until its bucket refills, with the thread idle, and then go on', () => {
    const { loop, q, log, paced, submit } = pacing();
    submit('vm-victim', 'v0', 0.1); // alone: ran at once
    for (let i = 0; i < 40; i++) expect(submit('vm-flood', `f${i}`, 1)).toBe('queued');
    loop.drain();
    // A full bucket (10 ms), then 0.5 ms refilled per 1 ms request: it runs while its bucket is
    // positive (10 - 1, then 0.5 less each time: 19 requests).
    const ranAtOnce = log.filter((n) => n.startsWith('f')).length;
    expect(ranAtOnce).toBe(19);
    // Then held: its requests stay queued with nothing deferred (no polling), one timer armed.
    expect(q.queued).toBe(21);
    expect(loop.pending).toBe(0);
    expect(loop.timersArmed).toBe(1);
    expect(q.pacedKeys).toBe(1);
    expect(paced).toEqual(['vm-flood']);
    // The victim asks meanwhile: it is not held, and runs in the next check phase (then the
    // flood's bucket holds the 0.05 ms refilled meanwhile, and one of its requests runs).
    expect(submit('vm-victim', 'v1', 0.1)).toBe('queued');
    loop.drain();
    expect(log.slice(ranAtOnce + 1)).toEqual(['v1', 'f19']);
    // The thread idle but for the timer: the flood goes on at its share, half of the time
    // (1 ms requests: one per 2 ms), neither more nor much less.
    const from = loop.t;
    const before = log.filter((n) => n.startsWith('f')).length;
    for (let ms = 0; ms < 20; ms++) {
      loop.idle(1);
      loop.drain();
    }
    const ranPaced = log.filter((n) => n.startsWith('f')).length - before;
    expect(ranPaced).toBeLessThanOrEqual(0.5 * (loop.t - from) + 1);
    expect(ranPaced).toBeGreaterThanOrEqual(0.5 * (loop.t - from) - 2);
    // Nothing was refused: it waited within its deadline, and the rest runs later.
    expect(log.filter((n) => n.includes('refused'))).toEqual([]);
    for (let ms = 0; ms < 100 && q.queued > 0; ms++) {
      loop.idle(1);
      loop.drain();
    }
    expect(q.queued).toBe(0);
    expect(q.pacedKeys).toBe(0);
    expect(loop.timersArmed).toBe(0);
  });

  it("charges a key the main thread's work around its requests, not only their items: a flood of cheap items whose parse and audit cost the thread is held", () => {
    const { loop, q, log, submit } = pacing();
    submit('vm-victim', 'v0', 0.05);
    // Each flood request: 0.05 ms of item, and 0.25 ms of the thread's work outside it (read,
    // parse and identity before; audit and answer after), over 16 connections, closed loop.
    let sent = 0;
    const send = (): void => {
      loop.spend(0.25);
      submit('vm-flood', `f${sent++}`, 0.05);
    };
    for (let i = 0; i < 16; i++) send();
    let answered = 0;
    const sendForAnswered = (): void => {
      // Each answered request's connection sends the next one in the poll before the phase.
      const ran = log.filter((n) => n.startsWith('f')).length;
      for (; answered < ran; answered++) send();
    };
    // Polls 0.5 ms apart (and what the thread does in between) for 200 ms at least.
    for (let poll = 0; poll < 400; poll++) {
      if (poll % 4 === 0) {
        // The victim keeps asking, one request every 2 ms, each costing the thread as much.
        loop.spend(0.25);
        submit('vm-victim', `v${poll}`, 0.05);
      }
      sendForAnswered();
      loop.drain(sendForAnswered);
      loop.idle(0.5);
    }
    const floodRuns = log.filter((n) => n.startsWith('f')).length;
    // The thread's time the flood took, items and the work around them (0.3 ms a request):
    // at most its share of the time that passed, its 10 ms burst, and what it spent in the
    // attribution window not yet closed. Its items alone (0.05 ms) would have let it take all the
    // time the victim left.
    const elapsed = loop.t - 1000;
    expect(floodRuns * 0.3).toBeLessThanOrEqual(0.5 * elapsed + 10 + ATTRIBUTION_WINDOW_MS);
    expect(floodRuns * 0.3).toBeGreaterThan(0.4 * elapsed);
    expect(q.pacedTotal).toBeGreaterThan(0);
    // The victim's requests were never held: each ran in the phase after it asked.
    expect(log.filter((n) => n.startsWith('v')).length).toBe(101);
  });

  it('splits the work outside the items between the keys pro rata of the requests each handed in', () => {
    const { loop, q, submit } = pacing({ share: 1 });
    loop.spend(4); // 4 ms of parse, audit and answer for the four requests below
    submit('vm-a', 'a0', 0);
    submit('vm-b', 'b0', 0);
    submit('vm-b', 'b1', 0);
    submit('vm-b', 'b2', 0);
    loop.idle(5);
    loop.drain(); // the window closes when these runs are charged
    expect(q.costOf('vm-a')).toBeCloseTo(1, 6);
    expect(q.costOf('vm-b')).toBeCloseTo(3, 6);
  });

  it("a long window's work that was no request's is not charged to the few requests in it: each pays at most what steady windows measured a request", () => {
    // (A short contention window: the second key does not join at the first's cost.)
    const { loop, q, submit } = pacing({ share: 1, contentionWindowMs: 100 });
    // Steady: 0.25 ms of work around each 0.05 ms request, one every 0.5 ms, for 100 ms.
    for (let i = 0; i < 200; i++) {
      loop.spend(0.25);
      submit('vm-a', `a${i}`, 0.05);
      loop.idle(0.2);
    }
    // Then 500 ms with no request, in which the thread works 50 ms for no VM (an admin
    // request, a prune); then one request of another key.
    loop.idle(250);
    loop.spend(50);
    loop.idle(200);
    loop.spend(0.25);
    submit('vm-b', 'b0', 0.05);
    loop.idle(10);
    loop.drain();
    loop.spend(0.25);
    submit('vm-b', 'b1', 0.05); // closes the window
    // b pays its items and about what a request cost in the steady windows: not the 50 ms.
    expect(q.costOf('vm-b')).toBeGreaterThan(0.3);
    expect(q.costOf('vm-b')).toBeLessThan(0.7);
  });

  it("the work completing a key's request outside its turn (a worker's answer) is the key's, not split by count: a VM asking often does not pay for it", () => {
    const { loop, q, submit } = pacing({ share: 0.5, burstMs: 10 });
    // A storm that asks rarely (its policy runs in a worker: its turns are short), each answer
    // costing the main thread 2 ms when it comes back (its logs, its audit record); a victim
    // asking every 2 ms, 0.1 ms a turn and 0.05 ms around it.
    for (let ms = 0; ms < 300; ms += 2) {
      loop.spend(0.05);
      submit('vm-victim', `v${ms}`, 0.1);
      loop.drain();
      if (ms % 20 === 0) {
        submit('vm-storm', `s${ms}`, 0.02);
        loop.drain();
        // Its worker answers: the main thread completes it, in a task of its own.
        loop.holdMicrotasks = true;
        q.completing('vm-storm');
        loop.spend(2);
        loop.endTask();
        loop.holdMicrotasks = false;
      }
      loop.idle(2);
    }
    // The storm paid its completions (2 ms each, 15 of them, decaying over 0.3 s); the victim
    // only its own: never held.
    expect(q.costOf('vm-storm')).toBeGreaterThan(15 * 2 * 0.8);
    expect(q.costOf('vm-victim')).toBeLessThan(150 * 0.2);
    expect(q.tokensOf('vm-victim')).toBeGreaterThan(0);
    expect(q.pacedTotal).toBe(0);
  });

  it("a VM's work outside any request (connections, requests refused as read) is counted as its own: junk beside one request a second does not hold the other VM", () => {
    const { loop, q, submit } = pacing({ share: 0.5, burstMs: 10 });
    // The junk VM asks once, so that it counts as asking (contention) for the whole test.
    submit('vm-junk', 'j0', 0.02);
    loop.drain();
    // A victim asking every 2 ms (0.1 ms a turn, 0.05 around it); beside each of its requests, the
    // junk VM opens 8 connections and sends a malformed request on each (0.2 ms of the main
    // thread apiece: accept, identity, parse, the 400, the close), none of which reach the queue.
    for (let ms = 0; ms < 300; ms += 2) {
      for (let i = 0; i < 8; i++) {
        q.noteWork('vm-junk');
        loop.spend(0.2);
      }
      loop.spend(0.05);
      submit('vm-victim', `v${ms}`, 0.1);
      loop.drain();
      loop.idle(0.2);
    }
    // The victim paid about its own (0.15 ms a request), not the junk's 1.6 ms beside each.
    expect(q.costOf('vm-victim')).toBeLessThan(150 * 0.3);
    expect(q.costOf('vm-junk')).toBeGreaterThan(150 * 1.6 * 0.5);
    expect(q.tokensOf('vm-victim')).toBeGreaterThan(0);
    expect(q.pacedTotal).toBe(0);
  });

  it('a key alone is never held, whatever it costs; once another key asks, it has no burst left and is held at once', () => {
    const { loop, q, log, submit } = pacing();
    for (let i = 0; i < 100; i++) expect(submit('vm-flood', `f${i}`, 1)).toBe('ran');
    expect(loop.pending).toBe(0);
    expect(loop.timersArmed).toBe(0);
    // Its bucket drained to 0, not below: no debt for time nobody else wanted.
    expect(q.tokensOf('vm-flood')).toBe(0);
    log.length = 0;
    submit('vm-victim', 'v0', 0.1);
    for (let i = 0; i < 10; i++) expect(submit('vm-flood', `g${i}`, 1)).toBe('queued');
    loop.drain();
    // The victim's first; then the flood's bucket holds what refilled meanwhile (0.05 ms): one
    // of its requests runs, and it is held.
    expect(log).toEqual(['v0', 'g0']);
    expect(q.pacedKeys).toBe(1);
    // It goes on at its share: one 1 ms request per 2 ms.
    const from = loop.t;
    for (let ms = 0; ms < 10; ms++) {
      loop.idle(1);
      loop.drain();
    }
    expect(log.length - 2).toBeLessThanOrEqual(0.5 * (loop.t - from) + 1);
  });

  it('a request held for its share past its deadline is refused as rate-limited, never run, with when the bucket is positive again', () => {
    const { loop, q, log, refusals, submit } = pacing({ maxWaitMs: 50 });
    submit('vm-victim', 'v0', 0.1);
    submit('vm-flood', 'f-big', 200); // a full bucket (10) less 200: 190 ms in debt
    loop.drain();
    expect(q.tokensOf('vm-flood')).toBeCloseTo(-190, 6);
    submit('vm-victim', 'v1', 0.1);
    expect(submit('vm-flood', 'f1', 1)).toBe('queued');
    expect(submit('vm-flood', 'f2', 1)).toBe('queued');
    loop.drain();
    expect(log).toEqual(['v0', 'f-big', 'v1']);
    loop.idle(51); // the timer wakes at their deadline
    loop.drain();
    // 190 - 25.5 refilled = 164.5 ms in debt: 329 ms at 0.5, and the scheduler's 1 ms.
    expect(log.slice(3)).toEqual(['f1 refused (vm-rate-limited, 330 ms)', 'f2 refused (vm-rate-limited, 330 ms)']);
    expect(refusals).toEqual(['vm-rate-limited', 'vm-rate-limited']);
    expect(q.queued).toBe(0);
  });

  it('with share 1 (the cap off) nothing is held: the flood runs whenever the victim has nothing waiting', () => {
    const { loop, q, log, submit } = pacing({ share: 1 });
    submit('vm-victim', 'v0', 0.1);
    for (let i = 0; i < 40; i++) submit('vm-flood', `f${i}`, 1);
    loop.drain();
    expect(log.filter((n) => n.startsWith('f')).length).toBe(40);
    expect(q.pacedTotal).toBe(0);
  });

  it('refuses a share or burst that is not a positive number', () => {
    expect(() => new TurnQueue(limits({ share: 0 }))).toThrow(/share must be a positive number, got 0/);
    expect(() => new TurnQueue(limits({ burstMs: Number.NaN }))).toThrow(/burstMs must be a positive number/);
  });
});
