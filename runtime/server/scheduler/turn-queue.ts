// Fair order of the main thread's per-request work across VMs.
//
// The event loop is the daemon's real queue: one poll of it may find many connections readable,
// and each `data` callback runs its request's work at once (parse, identity, the evaluation's
// start, and in the microtasks behind it: the speculative run, effects and their undo, the audit
// record). A VM that floods cheap requests on many connections would then have every one of
// them run ahead of another VM's request read in the same poll. So a complete request is handed
// here, keyed by who pays for it (its VM, or one key for every peer in no VM), and
//   - while only one key has asked recently (within `contentionWindowMs`) and nothing waits, it
//     runs at once, in the callback that read it: one VM alone pays no latency;
//   - otherwise it waits in its key's queue (a key that starts asking joins at the least cost of
//     those asking: joins()), and each of the event loop's check phases
//     (setImmediate, right after the poll that read the requests) runs queued requests one at a
//     time, each time the one of the key with the least recent cost (decayed: recent-cost.ts;
//     ties: the oldest first), up to `turnBudgetMs` of them a turn, then yields to the next poll,
//     so that requests read meanwhile are ordered before the rest is run.
// A request's cost is the main thread's wall time from its start until the microtasks it set off
// have all run (queueMicrotask, then process.nextTick: Node runs that tick once the microtask
// queue is empty): its synchronous part and what follows at once (the speculative run, effects,
// undo, audit record). The audit commit and the answer, later, are not in it.
// This orders, it never refuses work for its cost (the evaluation scheduler's vmShare does that
// for evaluations). It refuses only when a queue is full, or when a request waited past its
// deadline (never run, so never audited). Keys idle for a while are forgotten.
import { addCost, COST_HALF_LIFE_MS, decayedCost } from './recent-cost.ts';

export interface TurnQueueLimits {
  /** Requests waiting, all keys together. */
  maxQueued: number;
  /** Requests waiting of one key. */
  maxQueuedPerKey: number;
  /** How long after its last request another key still counts as asking (ms). */
  contentionWindowMs: number;
  /** Longest a request may wait here (ms): past it, it is refused, not run. */
  maxWaitMs: number;
  /** Main-thread time a turn of the event loop runs queued requests before it yields (ms; at least one runs). */
  turnBudgetMs?: number;
}

export const TURN_BUDGET_MS = 1;

/** Time and the event loop's hooks, injectable so that tests drive them. */
export interface TurnClock {
  now(): number;
  /** Runs `fn` in a later check phase of the event loop (setImmediate). */
  defer(fn: () => void): void;
  /** Runs `fn` once the microtasks queued by the running task, and theirs, have all run. */
  afterMicrotasks(fn: () => void): void;
}

const RESOLVED = Promise.resolve();
/** Per function given to afterMicrotasks (the turn queue gives one): what queues its tick. */
const tickers = new WeakMap<() => void, () => void>();

export const REAL_TURN_CLOCK: TurnClock = {
  now: () => performance.now(),
  defer: (fn) => setImmediate(fn),
  // A tick queued from a microtask runs once V8's microtask queue is empty (Node drains ticks
  // and microtasks in turn until both are). The microtask is a resolved promise's reaction, in
  // the same queue as queueMicrotask's, which makes an async resource and a bound function each
  // time (every request runs this).
  afterMicrotasks: (fn) => {
    let ticker = tickers.get(fn);
    if (ticker === undefined) tickers.set(fn, (ticker = () => process.nextTick(fn)));
    void RESOLVED.then(ticker);
  },
};

export type TurnRefusal = 'queue-full' | 'vm-queue-full' | 'deadline';

export interface TurnJob {
  /** Does the request's work. Must not throw. */
  run(): void;
  /** Answers the request without running it (it waited past its deadline). Must not throw. */
  refuse(reason: 'deadline'): void;
}

export type TurnAdmission = 'ran' | 'queued' | 'queue-full' | 'vm-queue-full';

interface Waiting {
  job: TurnJob;
  /** On the clock. */
  at: number;
  deadlineAt: number;
}

interface Lane {
  key: string;
  queue: Waiting[];
  /** Recent main-thread cost (ms), decayed to costAt. */
  cost: number;
  costAt: number;
  lastAskedAt: number;
}

export interface TurnQueueOptions {
  clock?: TurnClock;
  /** A request refused here (never run). */
  onRefused?(reason: TurnRefusal): void;
}

export class TurnQueue {
  private readonly lanes = new Map<string, Lane>();
  /** Lanes with requests waiting. */
  private readonly ready: Lane[] = [];
  private queuedTotal = 0;
  /** Steps deferred and not yet run (each runs at most one request). */
  private steps = 0;
  /** Tells the check phases apart: steps deferred before a phase carry its number. */
  private generation = 0;
  private phaseGeneration = -1;
  private phaseStartedAt = 0;
  /** The key that asked last and when, and when the last other key did: is another key asking? */
  private lastKey = '';
  private lastAt = -Infinity;
  private otherAt = -Infinity;
  private lastSweep = 0;
  private longestWait = 0;
  private readonly clock: TurnClock;
  private readonly budget: number;

  constructor(
    readonly limits: TurnQueueLimits,
    private readonly options: TurnQueueOptions = {},
  ) {
    for (const k of ['maxQueued', 'maxQueuedPerKey'] as const) {
      const v = limits[k];
      if (!Number.isInteger(v) || v < 1) throw new Error(`turn queue limit ${k} must be a positive integer, got ${v}`);
    }
    for (const k of ['contentionWindowMs', 'maxWaitMs'] as const) {
      const v = limits[k];
      if (!Number.isFinite(v) || v < 0) throw new Error(`turn queue limit ${k} must be a number >= 0, got ${v}`);
    }
    this.budget = limits.turnBudgetMs ?? TURN_BUDGET_MS;
    this.clock = options.clock ?? REAL_TURN_CLOCK;
  }

  /** Requests waiting. */
  get queued(): number {
    return this.queuedTotal;
  }

  /** Keys remembered (some waiting, the others with a recent cost). */
  get keys(): number {
    return this.lanes.size;
  }

  /** The longest a request waited here since the previous call (ms). */
  takeLongestWait(): number {
    const w = this.longestWait;
    this.longestWait = 0;
    return w;
  }

  /** The key's recent cost (ms; 0 for a key not remembered). */
  costOf(key: string): number {
    const lane = this.lanes.get(key);
    return lane === undefined ? 0 : decayedCost(lane, this.clock.now());
  }

  /** Runs `job` now, or queues it: see the file's comment. */
  submit(key: string, job: TurnJob): TurnAdmission {
    const now = this.clock.now();
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { key, queue: [], cost: 0, costAt: now, lastAskedAt: -Infinity };
      this.lanes.set(key, lane);
    }
    if (now - lane.lastAskedAt > this.limits.contentionWindowMs) this.joins(lane, now);
    lane.lastAskedAt = now;
    const contended = this.otherAskedSince(key, now - this.limits.contentionWindowMs);
    this.asked(key, now);
    if (this.queuedTotal === 0 && !contended) {
      this.run(lane, job, now);
      this.sweep(now);
      return 'ran';
    }
    if (lane.queue.length >= this.limits.maxQueuedPerKey) return this.refused('vm-queue-full');
    if (this.queuedTotal >= this.limits.maxQueued) return this.refused('queue-full');
    lane.queue.push({ job, at: now, deadlineAt: now + this.limits.maxWaitMs });
    if (lane.queue.length === 1) this.ready.push(lane);
    this.queuedTotal++;
    if (this.steps < this.queuedTotal) this.deferStep();
    return 'queued';
  }

  /**
   * A key that starts asking (new, or quiet for the contention window) starts at the least recent
   * cost of the keys asking now, not below it: its quiet time is no credit against them (fair
   * queueing does the same: a flow joins at the system's virtual time). Without it, a VM that
   * started flooding after a quiet while had ~0 recent cost and went first until its cost caught
   * up with a steady VM's (one cheap request every 2 ms carries ~0.1-0.15 s of decayed cost):
   * measured in the isolation bench's traces (one core, memlock-then-deny), in a flood's first
   * 0.3 s the victim waited here 1.3-1.4 ms a request on average (0.4 later), its round trips
   * outlasted its 2 ms interval, and the requests due meanwhile piled up to 125 ms late: that
   * stretch was the row's p99. With it: 0.4-0.6 ms, and 20-22 ms at worst in that stretch.
   */
  private joins(lane: Lane, now: number): void {
    let floor = Infinity;
    for (const other of this.lanes.values())
      if (other !== lane && now - other.lastAskedAt <= this.limits.contentionWindowMs)
        floor = Math.min(floor, decayedCost(other, now));
    if (floor !== Infinity && floor > decayedCost(lane, now)) {
      lane.cost = floor;
      lane.costAt = now;
    }
  }

  private refused(reason: TurnRefusal): TurnAdmission {
    this.options.onRefused?.(reason);
    return reason as TurnAdmission;
  }

  private run(lane: Lane, job: TurnJob, startedAt: number): void {
    job.run();
    // Charged together with the other runs of this task, once their microtasks have run: one
    // hook, no closure per request.
    this.ranLanes[this.ran] = lane;
    this.ranAt[this.ran] = startedAt;
    if (++this.ran === 1) this.clock.afterMicrotasks(this.chargeRuns);
  }

  /** Runs not charged yet: their lanes, and when each started (the first `ran` of each). The
   * arrays are kept, not emptied: an array cut to length 0 frees its storage, which the next
   * request's run allocated again. */
  private readonly ranLanes: Array<Lane | undefined> = [];
  private readonly ranAt: number[] = [];
  private ran = 0;

  private readonly chargeRuns = (): void => {
    const now = this.clock.now();
    for (let i = 0; i < this.ran; i++) {
      addCost(this.ranLanes[i]!, now, Math.max(0, now - this.ranAt[i]!));
      this.ranLanes[i] = undefined; // a forgotten lane is not kept alive here
    }
    this.ran = 0;
  };

  private deferStep(): void {
    this.steps++;
    const generation = this.generation;
    this.clock.defer(() => this.step(generation));
  }

  /** One step of a check phase: runs the waiting request of the key that cost least recently. */
  private step(generation: number): void {
    this.steps--;
    const now = this.clock.now();
    if (generation !== this.phaseGeneration) {
      // The first step of this check phase; steps deferred from now on run in the next one.
      this.phaseGeneration = generation;
      this.phaseStartedAt = now;
      this.generation = generation + 1;
    } else if (now - this.phaseStartedAt >= this.budget) {
      // This turn has run its share of queued requests: yield to the poll, then go on.
      if (this.steps < this.queuedTotal) this.deferStep();
      return;
    }
    for (;;) {
      const lane = this.leastCost(now);
      if (lane === undefined) return;
      const waiting = lane.queue.shift()!;
      this.queuedTotal--;
      if (lane.queue.length === 0) this.ready.splice(this.ready.indexOf(lane), 1);
      const waited = now - waiting.at;
      if (waited > this.longestWait) this.longestWait = waited;
      if (waiting.deadlineAt < now) {
        this.options.onRefused?.('deadline');
        waiting.job.refuse('deadline');
        continue;
      }
      this.run(lane, waiting.job, now);
      this.sweep(now);
      return;
    }
  }

  /** The waiting lane with the least recent cost; ties: the one whose request waited longest. */
  private leastCost(now: number): Lane | undefined {
    let best: Lane | undefined;
    let bestCost = Infinity;
    for (const lane of this.ready) {
      const cost = decayedCost(lane, now);
      if (cost < bestCost || (cost === bestCost && lane.queue[0]!.at < best!.queue[0]!.at))
        (best = lane), (bestCost = cost);
    }
    return best;
  }

  private asked(key: string, now: number): void {
    if (key !== this.lastKey) {
      this.otherAt = this.lastAt;
      this.lastKey = key;
    }
    this.lastAt = now;
  }

  /** Has a key other than `key` asked after `since`? */
  private otherAskedSince(key: string, since: number): boolean {
    return key === this.lastKey ? this.otherAt > since : this.lastAt > since;
  }

  /** Forgets keys with nothing waiting that have not asked for a while (their cost has decayed away). */
  private sweep(now: number): void {
    const quiet = Math.max(this.limits.contentionWindowMs, 4 * COST_HALF_LIFE_MS);
    if (now - this.lastSweep < quiet) return;
    this.lastSweep = now;
    for (const [key, lane] of this.lanes)
      if (lane.queue.length === 0 && now - lane.lastAskedAt >= quiet) this.lanes.delete(key);
  }
}
