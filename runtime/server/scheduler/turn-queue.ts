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
// It also paces: while another key is asking (it asked within `contentionWindowMs`, or has
// requests waiting), a key is held to `share` of the main thread's time, a token bucket refilled
// `share` ms per ms up to `burstMs` (scheduler.mainThreadShare, by default the evaluation
// scheduler's vmShare, and scheduler.mainThreadBurstMs: fair-scheduler.ts paces evaluations so). A key over it keeps its requests queued until its bucket is
// positive again, even with the thread idle (a timer wakes the queue, no polling); one whose
// deadline passes there is refused as rate-limited (429 with Retry-After, as the evaluation
// scheduler refuses a job held for its share: the VM's own doing, not the daemon's overload).
// Alone, a key is never held (its bucket drains to 0 at most, so that a key that flooded before
// another arrived has no burst left when it does). What a key is charged is the whole main-thread
// time its requests cause, not only the items' spans: see `attribute()`.
// Otherwise it never refuses work for its cost. It refuses when a queue is full, or when a request
// waited past its deadline (never run, so never audited). Keys idle for a while are forgotten.
import { addCost, COST_HALF_LIFE_MS, decayedCost } from './recent-cost.ts';
import { type Bucket, ShareBucket } from './share-bucket.ts';

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
  /** Share of the main thread's time (ms per ms) one key may use while another is asking; >= 1 or absent: no pacing. */
  share?: number;
  /** What a key may spend at once above its share (ms): the bucket's size. */
  burstMs?: number;
}

export const TURN_BUDGET_MS = 1;

/**
 * The default bucket of a key's main-thread time above its share (ms; scheduler.mainThreadBurstMs).
 * Smaller than the evaluations' (vmBurstMs, 100 ms): a flood that starts while another VM asks
 * runs unpaced until its bucket is spent, at most `burst / (1 - share)` ms (200 ms at 100 and
 * 0.5), and in the isolation bench each loaded block starts so (the flood quiet for a second
 * before it): with 100 ms the main thread was busy 57-58% of the one core in the loaded phases
 * (two runs), with 10 ms 41-52% (seven).
 */
export const MAIN_THREAD_BURST_MS = 10;

/** Time and the event loop's hooks, injectable so that tests drive them. */
export interface TurnClock {
  now(): number;
  /** Runs `fn` in a later check phase of the event loop (setImmediate). */
  defer(fn: () => void): void;
  /** Runs `fn` once the microtasks queued by the running task, and theirs, have all run. */
  afterMicrotasks(fn: () => void): void;
  /** Runs `fn` once, `ms` from now; the timer must not keep the process alive. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
  /** The main thread's busy time so far (ms on now()'s scale: all but the time it waited for I/O);
   * absent: only the items' own spans are charged. */
  busyMs?(): number;
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
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
  // The event loop's active time: what it did outside the poll that waits for I/O (libuv's own
  // metrics, one native call).
  busyMs: () => performance.eventLoopUtilization().active,
};

export type TurnRefusal = 'queue-full' | 'vm-queue-full' | 'deadline' | 'vm-rate-limited';

export interface TurnJob {
  /** Does the request's work. Must not throw. */
  run(): void;
  /**
   * Answers the request without running it: it waited past its deadline, held for its key's
   * share ('vm-rate-limited': `retryAfterMs` is when the key's bucket is positive again) or
   * behind other keys' requests ('deadline'). Must not throw.
   */
  refuse(reason: 'deadline' | 'vm-rate-limited', retryAfterMs: number): void;
}

export type TurnAdmission = 'ran' | 'queued' | 'queue-full' | 'vm-queue-full';

interface Waiting {
  job: TurnJob;
  /** On the clock. */
  at: number;
  deadlineAt: number;
}

interface Lane extends Bucket {
  key: string;
  queue: Waiting[];
  /** Recent main-thread cost (ms), decayed to costAt. */
  cost: number;
  costAt: number;
  lastAskedAt: number;
  /** Requests it handed in since the attribution window opened. */
  windowRequests: number;
  /** Held back for its share since one of its requests last ran (counted once). */
  paced: boolean;
}

export interface TurnQueueOptions {
  clock?: TurnClock;
  /** A request refused here (never run). */
  onRefused?(reason: TurnRefusal): void;
  /** A key's requests were held back for its share (once per episode, until one of them runs). */
  onPaced?(key: string): void;
}

/**
 * How often (ms of the clock, at most) the main thread's busy time is read and what it spent
 * outside the items is attributed: see attribute().
 */
export const ATTRIBUTION_WINDOW_MS = 5;
/**
 * A window at most this long (ms) is one of requests coming steadily: what of its busy time the
 * items do not account for is theirs. A longer one had the thread idle or doing other work
 * (another VM's requests held back for their share, an admin request, a retention prune) for a
 * while: its requests are charged at most what the recent short windows measured a request.
 */
export const STEADY_WINDOW_MS = 4 * ATTRIBUTION_WINDOW_MS;
/**
 * The most a request is charged for the main thread's work outside its item (ms), whatever a
 * window measured (measured: 0.08 ms a request under a flood, on one core: see attribute()).
 */
export const MAX_OUTSIDE_MS_PER_REQUEST = 2;

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
  private readonly bucket: ShareBucket;
  private timer: unknown;
  private timerAt = Infinity;
  private pacedEpisodes = 0;
  /** The attribution window: when it opened, the main thread's busy time then, the items' spans
   * charged in it, and the requests handed in (all keys). */
  private windowAt = 0;
  private windowBusy = 0;
  private windowSpans = 0;
  private windowRequests = 0;
  /** The work outside the items a request caused, as the recent steady windows measured it
   * (ms, a moving average; 0 until one has). */
  private outsideEach = 0;

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
    const share = limits.share ?? 1;
    const burst = limits.burstMs ?? MAIN_THREAD_BURST_MS;
    for (const [k, v] of [
      ['share', share],
      ['burstMs', burst],
    ] as const)
      if (!Number.isFinite(v) || v <= 0) throw new Error(`turn queue limit ${k} must be a positive number, got ${v}`);
    this.bucket = new ShareBucket(share, burst);
    this.clock = options.clock ?? REAL_TURN_CLOCK;
    this.windowAt = this.clock.now();
    this.windowBusy = this.clock.busyMs?.() ?? 0;
  }

  private get pacing(): boolean {
    return this.bucket.pacing;
  }

  /** Times a key's requests were held back for its share (an episode ends when one of them runs). */
  get pacedTotal(): number {
    return this.pacedEpisodes;
  }

  /** Keys whose waiting requests are held back for their share right now. */
  get pacedKeys(): number {
    let n = 0;
    for (const lane of this.ready) if (lane.paced) n++;
    return n;
  }

  /** The main thread's work around one request, outside its item, as the steady windows
   * measured it (ms; a moving average, 0 until one has): see attribute(). */
  get outsideMsPerRequest(): number {
    return this.outsideEach;
  }

  /** The key's bucket level now (ms; `burstMs` for a key not remembered). */
  tokensOf(key: string): number {
    const lane = this.lanes.get(key);
    return lane === undefined ? this.bucket.burstMs : this.bucket.level(lane, this.clock.now());
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
      lane = {
        key,
        queue: [],
        cost: 0,
        costAt: now,
        lastAskedAt: -Infinity,
        ...this.bucket.full(now),
        windowRequests: 0,
        paced: false,
      };
      this.lanes.set(key, lane);
    }
    if (now - lane.lastAskedAt > this.limits.contentionWindowMs) this.joins(lane, now);
    lane.lastAskedAt = now;
    lane.windowRequests++;
    this.windowRequests++;
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

  /** Until when a key other than `key` counts as asking (Infinity: one has requests waiting). */
  private contendedUntil(key: string, now: number): number {
    const own = this.lanes.get(key)?.queue.length ?? 0;
    if (this.queuedTotal > own) return Infinity;
    const otherAt = key === this.lastKey ? this.otherAt : this.lastAt;
    const until = otherAt + this.limits.contentionWindowMs;
    return until > now ? until : -Infinity;
  }

  /** When a key held back for its share may run again; <= now: it is not held. */
  private heldUntil(lane: Lane, now: number): number {
    if (!this.pacing || this.bucket.level(lane, now) > 0) return -Infinity;
    return this.bucket.heldUntil(lane, now, this.contendedUntil(lane.key, now));
  }

  /** Charges `ms` of the main thread to `lane`: its recent cost (order) and its bucket (pace). */
  private charge(lane: Lane, now: number, ms: number): void {
    addCost(lane, now, ms);
    if (this.pacing) this.bucket.draw(lane, now, ms, this.contendedUntil(lane.key, now) > now);
  }

  /**
   * Charges the main thread's work outside the items to the keys that caused it. An item's span
   * (run() to its microtasks' end) leaves out what the thread does for its request before and
   * after: libuv's read, the HTTP parse and the identity of the peer before it, the audit commit,
   * the answer's write and the indexing after it, and the garbage all of that makes (measured:
   * 0.08 ms a request under the isolation bench's set-memlock-then-deny flood on one core, beside
   * ~0.1-0.2 ms of item). Measuring each part would take a
   * clock read in each (the audit commit is batched across keys, the parse runs before the key
   * is known, the collector runs when it will) and would still miss libuv's share. So the thread's
   * busy time (the event loop's active time: all but its waits for I/O) is read every
   * ATTRIBUTION_WINDOW_MS at most, and what of it the items' spans do not account for is split
   * between the keys pro rata of the requests each handed in during the window: the work around a
   * request is nearly the same for every request (its policy's own work is in the item), so a key
   * that asked twice as often caused twice as much of it. The window is closed when items are
   * charged (the cheapest moment: after a task's runs), so the work after the last requests of a
   * window falls into the next one, charged to whoever asks in it: a steady flood's windows follow
   * one another. A window longer than STEADY_WINDOW_MS (requests rare, or held back for their
   * share) holds work that was no request's too (an admin request, a prune, the metrics): its
   * requests are charged at most what the steady windows measured a request (measured in the
   * daemon: without that bound, a flood held for seconds at a small share paid for all the
   * thread did meanwhile, and fell further behind with each request it ran).
   */
  private attribute(now: number): void {
    if (this.clock.busyMs === undefined || now - this.windowAt < ATTRIBUTION_WINDOW_MS) return;
    const busy = this.clock.busyMs();
    const outside = Math.max(0, busy - this.windowBusy - this.windowSpans);
    const requests = this.windowRequests;
    const steady = now - this.windowAt <= STEADY_WINDOW_MS;
    this.windowAt = now;
    this.windowBusy = busy;
    this.windowSpans = 0;
    this.windowRequests = 0;
    if (requests === 0) return;
    let each = Math.min(outside / requests, MAX_OUTSIDE_MS_PER_REQUEST);
    if (steady) this.outsideEach += (each - this.outsideEach) / 8;
    else each = Math.min(each, this.outsideEach);
    for (const lane of this.lanes.values()) {
      if (lane.windowRequests === 0) continue;
      if (each > 0) this.charge(lane, now, each * lane.windowRequests);
      lane.windowRequests = 0;
    }
  }

  private refused(reason: TurnRefusal): TurnAdmission {
    this.options.onRefused?.(reason);
    return reason as TurnAdmission;
  }

  private run(lane: Lane, job: TurnJob, startedAt: number): void {
    this.inTurn = true;
    job.run();
    this.inTurn = false;
    this.record(lane, startedAt);
  }

  /** A turn's job is running (its synchronous part). */
  private inTurn = false;

  /**
   * The main thread starts work that completes a request of `key` outside its turn: a worker's
   * answer, from the evaluation's settling to the answer written (the pipeline's commit, the audit
   * record with the policy's logs). Charged to `key` as a turn is, from now until the microtasks
   * it sets off have run, and so not split between the keys by count (attribute()): that work is
   * a VM's own, and as large as its policy makes it (a log storm's). Not inside a turn (that work
   * is the turn's), nor for a key not remembered.
   */
  completing(key: string): void {
    if (this.inTurn) return;
    const lane = this.lanes.get(key);
    if (lane !== undefined) this.record(lane, this.clock.now());
  }

  /**
   * `key`'s peer made the main thread work for something that is no request handed in here: a
   * connection accepted (its identity), a request refused as it was read (malformed, too large,
   * too slow). Counted with the window's requests, so that attribute() splits the work outside the
   * items by what each key caused: otherwise a VM sending junk beside one real request a second
   * (to count as asking) had its junk's cost charged to the other VM's requests, and held that VM
   * to its share. A key not remembered is counted in the window only: its part is charged to no one.
   */
  noteWork(key: string): void {
    this.windowRequests++;
    const lane = this.lanes.get(key);
    if (lane !== undefined) lane.windowRequests++;
  }

  /** A span of `lane`'s work started at `startedAt`: charged with the others of this task, once
   * their microtasks have run (one hook, no closure per request). */
  private record(lane: Lane, startedAt: number): void {
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
      const span = Math.max(0, now - this.ranAt[i]!);
      this.charge(this.ranLanes[i]!, now, span);
      this.windowSpans += span;
      this.ranLanes[i] = undefined; // a forgotten lane is not kept alive here
    }
    this.ran = 0;
    this.attribute(now);
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
    if (this.pacing) this.refuseHeldPastDeadline(now);
    for (;;) {
      const lane = this.leastCost(now);
      if (lane === undefined) return this.holdRest(now);
      const waiting = this.take(lane, now);
      if (waiting.deadlineAt < now) {
        this.options.onRefused?.('deadline');
        waiting.job.refuse('deadline', 0);
        continue;
      }
      lane.paced = false;
      this.run(lane, waiting.job, now);
      this.sweep(now);
      // Requests held back lost their steps (holdRest): the rest goes on in the next phase.
      if (this.queuedTotal > 0 && this.steps === 0) this.deferStep();
      return;
    }
  }

  /** Takes the first waiting request of `lane`. */
  private take(lane: Lane, now: number): Waiting {
    const waiting = lane.queue.shift()!;
    this.queuedTotal--;
    if (lane.queue.length === 0) {
      this.ready.splice(this.ready.indexOf(lane), 1);
      lane.paced = false;
    }
    const waited = now - waiting.at;
    if (waited > this.longestWait) this.longestWait = waited;
    return waiting;
  }

  /** The waiting lane not held back with the least recent cost; ties: the one whose request waited longest. */
  private leastCost(now: number): Lane | undefined {
    let best: Lane | undefined;
    let bestCost = Infinity;
    for (const lane of this.ready) {
      if (this.heldUntil(lane, now) > now) continue;
      const cost = decayedCost(lane, now);
      if (cost < bestCost || (cost === bestCost && lane.queue[0]!.at < best!.queue[0]!.at))
        (best = lane), (bestCost = cost);
    }
    return best;
  }

  /** Refuses the requests of held-back keys whose deadline has passed: rate-limited, never run. */
  private refuseHeldPastDeadline(now: number): void {
    for (let i = 0; i < this.ready.length; ) {
      const lane = this.ready[i]!;
      if (lane.queue[0]!.deadlineAt >= now || this.heldUntil(lane, now) <= now) {
        i++;
        continue;
      }
      const retryAfterMs = this.bucket.refillMs(this.bucket.level(lane, now));
      while (lane.queue.length > 0 && lane.queue[0]!.deadlineAt < now) {
        const waiting = this.take(lane, now);
        this.options.onRefused?.('vm-rate-limited');
        waiting.job.refuse('vm-rate-limited', retryAfterMs);
      }
      if (lane.queue.length > 0) i++; // else take() removed it from `ready`
    }
  }

  /**
   * Nothing waiting may run now: every key with requests waiting is held back for its share (or
   * nothing waits). Counts the keys newly held, and wakes the queue when the first of them may
   * run again or a request of one reaches its deadline.
   */
  private holdRest(now: number): void {
    let wakeAt = Infinity;
    for (const lane of this.ready) {
      const held = this.heldUntil(lane, now);
      if (held <= now) continue;
      if (!lane.paced) {
        lane.paced = true;
        this.pacedEpisodes++;
        this.options.onPaced?.(lane.key);
      }
      wakeAt = Math.min(wakeAt, held, lane.queue[0]!.deadlineAt);
    }
    this.wakeAt(wakeAt, now);
  }

  /** One timer, at the earliest moment a held-back key may run or a request of one expires. */
  private wakeAt(at: number, now: number): void {
    if (at === this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = this.clock.setTimer(this.wake, Math.max(1, Math.ceil(at - now)));
  }

  /** The timer: the queue goes on in the next check phase (its steps refuse what expired). */
  private readonly wake = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.queuedTotal > 0 && this.steps === 0) this.deferStep();
  };

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
      if (
        lane.queue.length === 0 &&
        now - lane.lastAskedAt >= quiet &&
        (!this.pacing || this.bucket.level(lane, now) >= this.bucket.burstMs) // a debt is not forgotten
      )
        this.lanes.delete(key);
  }
}
