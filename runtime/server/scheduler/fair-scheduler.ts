// Fair admission of policy evaluations across requester VMs.
//
// Each key (a VM uuid) has its own FIFO queue and an in-flight cap; dispatch walks the keys
// round-robin, so a VM that floods the socket, or whose requests each hold a worker until the
// deadline, gets at most its cap of the global concurrency while every other VM's requests
// keep moving. Queues are bounded globally and per key: a flooding VM fills its own queue and
// gets 503s, not everyone else's.

export interface SchedulerLimits {
  /** Evaluations running at once, all keys together. */
  globalConcurrency: number;
  /** Evaluations running at once for one key; keep below globalConcurrency for isolation. */
  perKeyInFlight: number;
  /** Queued (not yet running) evaluations, all keys together. */
  maxQueued: number;
  /** Queued evaluations of one key. */
  maxQueuedPerKey: number;
}

export type Admission<T> =
  | { ok: true; result: Promise<T> }
  | { ok: false; reason: 'queue-full' | 'vm-queue-full' | 'closed' };

interface Job {
  run(): void;
}

interface Lane {
  queue: Job[];
  inFlight: number;
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

  constructor(readonly limits: SchedulerLimits) {
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`scheduler limit ${k} must be a positive integer, got ${v}`);
    }
  }

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.queuedTotal;
  }

  submit<T>(key: string, task: () => Promise<T>): Admission<T> {
    if (this.closed) return { ok: false, reason: 'closed' };
    const lane = this.lanes.get(key) ?? { queue: [], inFlight: 0 };
    if (lane.queue.length >= this.limits.maxQueuedPerKey && !this.canStart(lane))
      return { ok: false, reason: 'vm-queue-full' };
    if (this.queuedTotal >= this.limits.maxQueued && !this.canStart(lane)) return { ok: false, reason: 'queue-full' };
    this.lanes.set(key, lane);
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
    const job: Job = {
      run: () => {
        this.running++;
        lane.inFlight++;
        let p: Promise<T>;
        try {
          p = task();
        } catch (err) {
          p = Promise.reject(err);
        }
        // Free the slot before the caller's continuation runs, so that what it does next
        // (e.g. the audit writer asking whether more decisions are coming) sees the slot free.
        const settle = (): void => {
          this.running--;
          lane.inFlight--;
          if (lane.inFlight === 0 && lane.queue.length === 0) this.lanes.delete(key);
          this.pump();
        };
        p.then(
          (v) => (settle(), resolve(v)),
          (e: unknown) => (settle(), reject(e)),
        );
      },
    };
    lane.queue.push(job);
    this.queuedTotal++;
    if (lane.queue.length === 1) this.ring.push(key);
    this.pump();
    return { ok: true, result };
  }

  /** Refuses new work; resolves when everything admitted has finished. */
  drain(): Promise<void> {
    this.closed = true;
    if (this.running === 0 && this.queuedTotal === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private canStart(lane: Lane): boolean {
    return (
      this.running < this.limits.globalConcurrency &&
      lane.inFlight < this.limits.perKeyInFlight &&
      lane.queue.length === 0
    );
  }

  private pump(): void {
    // Round-robin over keys with queued work; skip keys at their in-flight cap.
    let scanned = 0;
    while (this.running < this.limits.globalConcurrency && this.ring.length > 0 && scanned < this.ring.length) {
      if (this.cursor >= this.ring.length) this.cursor = 0;
      const key = this.ring[this.cursor]!;
      const lane = this.lanes.get(key);
      if (!lane || lane.queue.length === 0) {
        this.ring.splice(this.cursor, 1);
        continue;
      }
      if (lane.inFlight >= this.limits.perKeyInFlight) {
        this.cursor++;
        scanned++;
        continue;
      }
      const job = lane.queue.shift()!;
      this.queuedTotal--;
      if (lane.queue.length === 0) this.ring.splice(this.cursor, 1);
      else this.cursor++;
      scanned = 0;
      job.run();
    }
    if (this.running === 0 && this.queuedTotal === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
