// Fair admission of policy evaluations across requester VMs.
//
// Each key (a VM uuid) has its own queue and an in-flight cap, so a VM that floods the socket,
// or whose requests each hold a worker until the deadline, gets at most its cap of the global
// concurrency. Queues are bounded globally and per key: a flooding VM fills its own queue and
// gets 503s, not everyone else's.
//
// The global slots stand for the evaluation workers: a job holds one while it is off the main
// thread (waiting for or running in a worker, or waiting for anything else). A job the main thread
// would decide at once (the caller's `startsInline`, asked only when every slot is taken) starts
// without one, under its key's cap, share and cost order as any other: when a slot held that
// job too, a VM whose policy held the only worker until its deadline (one core: one worker) held
// every other VM's 50 µs decisions behind it as long. Such a job takes a slot only if it goes on
// off the thread (its task returns a promise), above the cap if need be: at most
// `perKeyInFlight` of one key, and that key's next runs go straight to the workers for a while
// (the engine's back-off), so they wait for a slot. A job that finds a slot free takes it at once.
//
// Caps count requests, not what they cost, and most of what a decision costs is the daemon's
// own (one main thread, two cores). So the scheduler also measures each job: its wall time, start
// to settle (inline guest time, worker time, host calls, undo), with a slot or without. The main
// thread's own work around a decision (parse, identity, audit, answer) is not added: it is the
// same for every VM's decision, and counting it (measured at 0.1 ms a decision) paced a VM
// asking one request at a time as much as a flooding one. (The main thread's turn queue holds a
// VM to its share of that work: turn-queue.ts.) With that cost per key it
//   - dispatches the key with the least recent cost first (decayed, 1 s half-life; ties keep
//     round-robin order), so a VM that used little recently goes ahead of one that used much;
//   - while another key is asking (submitted within `contentionWindowMs`, or has work queued or
//     running), holds each key to `vmShare` of one core's time: a token bucket refilled
//     `vmShare` ms per ms up to `vmBurstMs`. A key over its budget keeps its jobs queued until
//     the bucket is positive again (an unref'd timer pumps), and a job whose deadline passes
//     there is refused as rate-limited, never run. Alone, a key is never held: the daemon stays
//     work-conserving for one VM (its bucket still drains, to 0 at most, so that a VM that was
//     flooding before another arrived has no burst left when it does).
// A job may also leave work behind that runs after it settled, on threads no slot holds (e.g. the
// garbage collection of the wasm memory a run dropped, on V8's platform threads): the caller
// prices it from the job's result (`leftBehindMs`), and it is charged to the job's key with the
// job's wall time, so pacing holds a VM to its share of all the time it causes.

import { addCost, COST_HALF_LIFE_MS, decayedCost } from './recent-cost.ts';
import { type Bucket, ShareBucket } from './share-bucket.ts';

export interface SchedulerLimits {
  /** Evaluations off the main thread at once (waiting for or in a worker), all keys together. A job
   * the main thread decides at once needs no slot (see the header). */
  globalConcurrency: number;
  /** Evaluations running at once for one key, on the main thread or off it; keep below
   * globalConcurrency for isolation. */
  perKeyInFlight: number;
  /** Queued (not yet running) evaluations, all keys together. */
  maxQueued: number;
  /** Queued evaluations of one key. */
  maxQueuedPerKey: number;
  /** Share of one core's time (ms of cost per ms) one key may use while another is asking; >= 1: no cap. */
  vmShare?: number;
  /** What a key may spend at once above its share (ms): the bucket's size. */
  vmBurstMs?: number;
  /** How long after its last request another key still counts as asking (ms). */
  contentionWindowMs?: number;
}

export const SCHEDULER_DEFAULTS = {
  vmShare: 0.5,
  vmBurstMs: 100,
  contentionWindowMs: 1000,
} as const;

/** Time and timers, injectable so that tests drive them. `setTimer`'s timer must not keep the process alive. */
export interface SchedulerClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

export const REAL_CLOCK: SchedulerClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
};

export interface SchedulerOptions {
  clock?: SchedulerClock;
  /** A job of `key` that went on off the main thread settles: the main thread's work to complete
   * it starts (the caller may charge it to the key: turn-queue.ts completing()). */
  onSettlingOffThread?(key: string): void;
  /** A key's jobs were held back for its share (once per episode, until one of them starts). */
  onPaced?(key: string): void;
}

export type Admission<T> =
  | { ok: true; result: Promise<T> }
  | { ok: false; reason: 'queue-full' | 'vm-queue-full' | 'closed' };

/** submitHere's admission: the result of a job that started at once and settled in it is a value. */
export type AdmissionHere<T> =
  | { ok: true; result: T | Promise<T> }
  | { ok: false; reason: 'queue-full' | 'vm-queue-full' | 'closed' };

/**
 * Whether a job of `key` would be decided on the main thread if it started now (it may still go
 * on in a worker). Asked when a job could start but for a free slot, so it must not change
 * anything; its answer may change while the job waits (back-off, the turn's budget).
 */
export type StartsInline = (key: string) => boolean;

/** A job that may be refused while its key is held back: by when, and what it resolves with then. */
export interface Deadline<T> {
  /** From now (ms): past it, a job still held back for its key's share is refused. */
  deadlineMs: number;
  /** The job's result when refused: `retryAfterMs` is when the key's bucket is positive again. */
  rateLimited(retryAfterMs: number): T;
}

interface Job {
  /** On the scheduler's clock; Infinity: never refused. */
  deadlineAt: number;
  startsInline: StartsInline | undefined;
  /** `withSlot`: a slot was free and it takes it (else it starts without one: it starts inline). */
  run(withSlot: boolean): void;
  refuse(retryAfterMs: number): void;
}

interface Lane extends Bucket {
  /** Ordered by deadline (arrival order for equal deadlines). */
  queue: Job[];
  inFlight: number;
  /** Recent cost (ms), decayed to `costAt`. */
  cost: number;
  costAt: number;
  lastAskedAt: number;
  /** Held back since its last start (counted once). */
  paced: boolean;
}

const INTEGER_LIMITS = ['globalConcurrency', 'perKeyInFlight', 'maxQueued', 'maxQueuedPerKey'] as const;

/** The caller's price of what a job left behind (ms); a price that fails counts as nothing, so
 * that the slot is freed whatever the caller's function does. */
function priced<T>(leftBehindMs: ((result: T) => number) | undefined, result: T): number {
  try {
    return leftBehindMs?.(result) ?? 0;
  } catch {
    return 0;
  }
}

export class FairScheduler {
  private readonly lanes = new Map<string, Lane>();
  /** Keys with queued work, in round-robin order. */
  private ring: string[] = [];
  private cursor = 0;
  private running = 0;
  private queuedTotal = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private readonly clock: SchedulerClock;
  private readonly bucket: ShareBucket;
  private readonly window: number;
  private timer: unknown;
  private timerAt = Infinity;
  private lastSweep = 0;
  private pacedEpisodes = 0;

  constructor(
    readonly limits: SchedulerLimits,
    private readonly options: SchedulerOptions = {},
  ) {
    for (const k of INTEGER_LIMITS) {
      const v = limits[k];
      if (!Number.isInteger(v) || v < 1) throw new Error(`scheduler limit ${k} must be a positive integer, got ${v}`);
    }
    const share = limits.vmShare ?? SCHEDULER_DEFAULTS.vmShare;
    const burst = limits.vmBurstMs ?? SCHEDULER_DEFAULTS.vmBurstMs;
    this.window = limits.contentionWindowMs ?? SCHEDULER_DEFAULTS.contentionWindowMs;
    const positive: Array<[string, number]> = [
      ['vmShare', share],
      ['vmBurstMs', burst],
    ];
    for (const [k, v] of positive)
      if (!Number.isFinite(v) || v <= 0) throw new Error(`scheduler ${k} must be a positive number, got ${v}`);
    if (!Number.isFinite(this.window) || this.window < 0)
      throw new Error(`scheduler contentionWindowMs must be a number >= 0, got ${this.window}`);
    this.bucket = new ShareBucket(share, burst);
    this.clock = options.clock ?? REAL_CLOCK;
  }

  /** Jobs holding a slot: off the main thread (in or waiting for a worker), or running on it
   * having found a slot free. A job running inline without one is not counted. */
  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.queuedTotal;
  }

  /** Times a key's jobs were held back for its share (an episode ends when one of them starts). */
  get pacedTotal(): number {
    return this.pacedEpisodes;
  }

  /** Keys whose queued jobs are held back for their share right now. */
  get pacedKeys(): number {
    let n = 0;
    for (const lane of this.lanes.values()) if (lane.paced && lane.queue.length > 0) n++;
    return n;
  }

  private get pacing(): boolean {
    return this.bucket.pacing && !this.closed;
  }

  /** `leftBehindMs(result)`: the cost (ms) of what the job leaves to run after it settled,
   * charged to `key` on top of its wall time. `startsInline`: whether the job would start on the
   * main thread now (then it needs no free slot); absent: it needs one. */
  submit<T>(
    key: string,
    task: () => Promise<T>,
    deadline?: Deadline<T>,
    leftBehindMs?: (result: T) => number,
    startsInline?: StartsInline,
  ): Admission<T> {
    const admission = this.submitHere(key, task, deadline, leftBehindMs, startsInline);
    if (!admission.ok || admission.result instanceof Promise) return admission as Admission<T>;
    return { ok: true, result: Promise.resolve(admission.result) };
  }

  /**
   * submit(), for a task that may settle as it runs (returns its result, not a promise): when
   * it starts at once and does, its slot is freed and charged before this returns, and the
   * result is the value itself (a lone VM's decisions, on the request path: no promise then).
   */
  submitHere<T>(
    key: string,
    task: () => T | Promise<T>,
    deadline?: Deadline<T>,
    leftBehindMs?: (result: T) => number,
    startsInline?: StartsInline,
  ): AdmissionHere<T> {
    if (this.closed) return { ok: false, reason: 'closed' };
    // Queued work that may start now goes first (what it waits for may have changed since the
    // last pump, e.g. a key's back-off ended): after it, none that is still queued could start.
    if (this.queuedTotal > 0) this.pump();
    const now = this.clock.now();
    const lane = this.lanes.get(key) ?? this.newLane(now);
    if (lane.queue.length >= this.limits.maxQueuedPerKey && !this.canStart(key, lane, now, startsInline))
      return { ok: false, reason: 'vm-queue-full' };
    if (this.queuedTotal >= this.limits.maxQueued && !this.canStart(key, lane, now, startsInline))
      return { ok: false, reason: 'queue-full' };
    this.lanes.set(key, lane);
    lane.lastAskedAt = now;
    // It may start now, and nothing queued could (pumped above): started at once, as pump() would
    // start it, with no job queued and no promise of its own (its result is the task's, once its
    // slot is freed): every decision of a lone VM comes here, and a job cost ~0.3 KB of garbage;
    // so does a decision made inline while other VMs' jobs wait for a worker.
    if (this.canStart(key, lane, now, startsInline)) {
      const result = this.start(key, lane, task, leftBehindMs, this.slotFree);
      this.pump();
      return { ok: true, result };
    }
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
    const job: Job = {
      deadlineAt: deadline === undefined ? Infinity : now + deadline.deadlineMs,
      startsInline,
      refuse: (retryAfterMs) => {
        try {
          resolve(deadline!.rateLimited(retryAfterMs));
        } catch (err) {
          reject(err);
        }
      },
      run: (withSlot) => {
        const settled = this.start(key, lane, task, leftBehindMs, withSlot);
        if (settled instanceof Promise) settled.then(resolve, reject);
        else resolve(settled);
      },
    };
    this.enqueue(lane, job);
    this.queuedTotal++;
    if (lane.queue.length === 1) this.ring.push(key);
    this.pump();
    return { ok: true, result };
  }

  /** Runs a job of `lane`, in a slot if `withSlot`; its result once it is settled (its slot
   * freed, its cost charged): the value itself when the task returned one (settled before this
   * returns). */
  private start<T>(
    key: string,
    lane: Lane,
    task: () => T | Promise<T>,
    leftBehindMs: ((result: T) => number) | undefined,
    withSlot: boolean,
  ): T | Promise<T> {
    if (withSlot) this.running++;
    lane.inFlight++;
    lane.paced = false;
    const startedAt = this.clock.now();
    let p: T | Promise<T>;
    try {
      p = task();
    } catch (err) {
      p = Promise.reject(err);
    }
    if (!(p instanceof Promise)) {
      this.settle(key, lane, startedAt, priced(leftBehindMs, p), withSlot);
      return p;
    }
    // Gone on off the main thread: it holds a slot from now on (above the cap if none was free).
    if (!withSlot) this.running++;
    // The slot is freed before the caller's continuation runs, so that what it does next (e.g.
    // the audit writer asking whether more decisions are coming) sees it free.
    return p.then(
      (v) => {
        this.options.onSettlingOffThread?.(key);
        this.settle(key, lane, startedAt, priced(leftBehindMs, v), true);
        return v;
      },
      (e: unknown) => {
        this.settle(key, lane, startedAt, 0, true);
        throw e;
      },
    );
  }

  private settle(key: string, lane: Lane, startedAt: number, leftBehindMs: number, heldSlot: boolean): void {
    if (heldSlot) this.running--;
    lane.inFlight--;
    this.charge(key, lane, startedAt, leftBehindMs);
    this.pump();
  }

  /** Starts the queued jobs that may start now: the caller knows that what one waited for may have
   * changed (e.g. the main thread's budget was renewed, so a job turned away from it may start there). */
  retry(): void {
    if (this.queuedTotal > 0) this.pump();
  }

  /** Refuses new work; resolves when everything admitted has finished (nothing is held back any more). */
  drain(): Promise<void> {
    this.closed = true;
    this.pump();
    if (this.running === 0 && this.queuedTotal === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private newLane(now: number): Lane {
    return {
      queue: [],
      inFlight: 0,
      cost: 0,
      costAt: now,
      ...this.bucket.full(now),
      lastAskedAt: now,
      paced: false,
    };
  }

  /** Inserted by deadline, from the back (deadlines mostly arrive in order). */
  private enqueue(lane: Lane, job: Job): void {
    const q = lane.queue;
    let i = q.length;
    while (i > 0 && q[i - 1]!.deadlineAt > job.deadlineAt) i--;
    q.splice(i, 0, job);
  }

  private charge(key: string, lane: Lane, startedAt: number, leftBehindMs: number): void {
    const now = this.clock.now();
    const cost = Math.max(0, now - startedAt) + (Number.isFinite(leftBehindMs) && leftBehindMs > 0 ? leftBehindMs : 0);
    addCost(lane, now, cost);
    this.bucket.draw(lane, now, cost, this.contendedUntil(key, now) > now);
    this.sweep(now);
  }

  /** Until when another key counts as asking (<= now: nobody else is). */
  private contendedUntil(key: string, now: number): number {
    let until = -Infinity;
    for (const [k, other] of this.lanes) {
      if (k === key) continue;
      if (other.queue.length > 0 || other.inFlight > 0) return Infinity;
      until = Math.max(until, other.lastAskedAt + this.window);
    }
    return until > now ? until : -Infinity;
  }

  /** When a key held back may start again (its bucket positive, or nobody else asking); <= now: it may. */
  private heldUntil(key: string, lane: Lane, now: number): number {
    if (!this.pacing || this.bucket.level(lane, now) > 0) return -Infinity;
    return this.bucket.heldUntil(lane, now, this.contendedUntil(key, now));
  }

  /** Forgets keys that are idle, full and quiet: a lane holds nothing a new one would not. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.window) return;
    this.lastSweep = now;
    for (const [k, lane] of this.lanes) {
      if (lane.queue.length > 0 || lane.inFlight > 0) continue;
      if (now - lane.lastAskedAt < Math.max(this.window, 4 * COST_HALF_LIFE_MS)) continue;
      if (this.bucket.level(lane, now) < this.bucket.burstMs) continue;
      this.lanes.delete(k);
    }
  }

  private get slotFree(): boolean {
    return this.running < this.limits.globalConcurrency;
  }

  /** Whether a new job of `key` may start now: its own cap and share allow it, nothing of its key
   * is queued before it, and a slot is free or it needs none (asked last: only then). */
  private canStart(key: string, lane: Lane, now: number, startsInline: StartsInline | undefined): boolean {
    return (
      lane.inFlight < this.limits.perKeyInFlight &&
      lane.queue.length === 0 &&
      this.heldUntil(key, lane, now) <= now &&
      (this.slotFree || startsInline?.(key) === true)
    );
  }

  private pump(): void {
    const now = this.clock.now();
    // Refusals first: each one can end another key's contention, and so let it start below.
    this.refuseExpired(now);
    // Least recent cost first among the keys that may start; ties in round-robin order. With
    // every slot taken, only a job that starts inline may.
    while (this.ring.length > 0) {
      const slotFree = this.slotFree;
      let best = -1;
      let bestCost = Infinity;
      for (let i = 0; i < this.ring.length; i++) {
        const at = (this.cursor + i) % this.ring.length;
        const key = this.ring[at]!;
        const lane = this.lanes.get(key)!;
        if (lane.inFlight >= this.limits.perKeyInFlight) continue;
        if (this.heldUntil(key, lane, now) > now) continue;
        if (!slotFree && lane.queue[0]!.startsInline?.(key) !== true) continue;
        const cost = decayedCost(lane, now);
        if (cost < bestCost) (best = at), (bestCost = cost);
      }
      if (best < 0) break;
      const key = this.ring[best]!;
      const lane = this.lanes.get(key)!;
      const job = lane.queue.shift()!;
      this.queuedTotal--;
      // Round-robin goes on from the key after this one.
      this.cursor = this.dropFromRingIfEmpty(best, lane) ? best : best + 1;
      if (this.cursor >= this.ring.length) this.cursor = 0;
      job.run(slotFree);
    }
    // Keys held back now: counted, and woken when the first of them may start or a job of one expires.
    let wakeAt = Infinity;
    for (const key of this.ring) {
      const lane = this.lanes.get(key)!;
      const held = this.heldUntil(key, lane, now);
      if (held <= now) continue;
      if (!lane.paced) {
        lane.paced = true;
        this.pacedEpisodes++;
        this.options.onPaced?.(key);
      }
      wakeAt = Math.min(wakeAt, held, lane.queue[0]!.deadlineAt);
    }
    this.wakeAt(wakeAt, now);
    if (this.running === 0 && this.queuedTotal === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Refuses the jobs of held-back keys whose deadline has passed. */
  private refuseExpired(now: number): void {
    for (let i = 0; i < this.ring.length; ) {
      const key = this.ring[i]!;
      const lane = this.lanes.get(key)!;
      if (lane.queue[0]!.deadlineAt > now || this.heldUntil(key, lane, now) <= now) {
        i++;
        continue;
      }
      const retryAfterMs = this.bucket.refillMs(this.bucket.level(lane, now));
      while (lane.queue.length > 0 && lane.queue[0]!.deadlineAt <= now) {
        this.queuedTotal--;
        lane.queue.shift()!.refuse(retryAfterMs);
      }
      if (!this.dropFromRingIfEmpty(i, lane)) i++;
    }
  }

  /** Takes a key whose queue is empty out of the ring, keeping the cursor on the key after it. */
  private dropFromRingIfEmpty(at: number, lane: Lane): boolean {
    if (lane.queue.length > 0) return false;
    lane.paced = false;
    this.ring.splice(at, 1);
    if (this.cursor > at) this.cursor--;
    if (this.cursor >= this.ring.length) this.cursor = 0;
    return true;
  }

  /** One timer, at the earliest moment a held-back key may start or a job of one expires. */
  private wakeAt(at: number, now: number): void {
    if (at === this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = this.clock.setTimer(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.max(1, Math.ceil(at - now)),
    );
  }
}
