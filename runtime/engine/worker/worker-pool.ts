// A fixed pool of evaluation workers with a FIFO queue in front. Every worker holds every loaded
// policy, so any idle worker can take any job. A job's wall-clock deadline runs from when it was
// handed to the pool: its wait in the queue counts (the scheduler lets a job that went on from a
// speculative run queue here behind a run that holds the worker, and its client waits for both).
// A job whose deadline passed in the queue is answered timeout without running: the calls its
// speculative run made are its caller's to list and undo. A CPU-time deadline (the simulator)
// counts the worker's thread only, so the queue's wait is not charged to it.
import { denyOutcome } from '../deny-outcome.ts';
import { wholeDeadline } from '../timeout-detail.ts';
import type { Outcome } from '../outcome.ts';
import { WorkerSlot, type EvaluateJob, type LoadedPolicy, type WorkerSlotOptions } from './worker-slot.ts';

interface Queued {
  job: EvaluateJob;
  deadlineMs: number;
  /** performance.now() when it was queued. */
  queuedAt: number;
  resolve: (o: Outcome) => void;
}

export interface WorkerPoolOptions extends WorkerSlotOptions {
  size: number;
}

export class WorkerPool {
  readonly #policies = new Map<string, LoadedPolicy>();
  readonly #slots: WorkerSlot[];
  readonly #queue: Queued[] = [];
  /** Tracked here, not by the slot: a slot is taken the moment a job is handed to it. */
  readonly #busy = new Set<WorkerSlot>();
  /** Deadlines count the workers' CPU time (the simulator): the queue's wait is not theirs. */
  readonly #cpuDeadline: boolean;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`worker pool size must be a positive integer, got ${options.size}`);
    }
    this.#slots = Array.from({ length: options.size }, () => new WorkerSlot(this.#policies, options));
    this.#cpuDeadline = options.cpuDeadline !== undefined;
  }

  get size(): number {
    return this.#slots.length;
  }

  /** Worker replacements so far (deadline expiries and crashes). */
  get respawns(): number {
    return this.#slots.reduce((n, s) => n + s.respawns, 0);
  }

  /** Thread ids of the current workers (tests use them to see a respawn). */
  get threadIds(): number[] {
    return this.#slots.map((s) => s.threadId);
  }

  /** Resolves once every worker has started (rejects if one cannot). */
  async ready(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.ready()));
  }

  has(sha256: string): boolean {
    return this.#policies.has(sha256);
  }

  load(sha256: string, policy: LoadedPolicy): void {
    this.#policies.set(sha256, policy);
    for (const s of this.#slots) s.send({ type: 'load', sha256, module: policy.module, limits: policy.limits });
  }

  unload(sha256: string): void {
    if (!this.#policies.delete(sha256)) return;
    for (const s of this.#slots) s.send({ type: 'unload', sha256 });
  }

  run(job: EvaluateJob, deadlineMs: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      this.#queue.push({ job, deadlineMs, queuedAt: performance.now(), resolve });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#busy.has(slot)) continue;
      const taken = this.#takeLive();
      if (taken === undefined) return;
      const [next, left] = taken;
      this.#busy.add(slot);
      void slot
        .run(next.job, left)
        .catch(
          (err: unknown): Outcome =>
            denyOutcome(
              'host-error',
              `engine bug in the worker pool: ${err instanceof Error ? err.message : String(err)}`,
            ),
        )
        .then((outcome) => {
          this.#busy.delete(slot);
          next.resolve(
            left < next.deadlineMs ? wholeDeadline(outcome, left, next.deadlineMs, 'waiting for a worker') : outcome,
          );
          this.#dispatch();
        });
    }
  }

  /** The first queued job whose deadline has not passed, with what is left of it (ms); the jobs
   * before it are answered timeout. */
  #takeLive(): [Queued, number] | undefined {
    for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
      // In whole milliseconds: a job handed to an idle worker at once keeps its deadline as given.
      const waitedMs = this.#cpuDeadline ? 0 : Math.floor(performance.now() - next.queuedAt);
      const left = next.deadlineMs - waitedMs;
      if (left > 0) return [next, left];
      next.resolve(
        denyOutcome(
          'timeout',
          `no decision within the ${next.deadlineMs} ms deadline: it passed while the evaluation waited for a worker`,
        ),
      );
    }
    return undefined;
  }

  async close(): Promise<void> {
    for (const q of this.#queue.splice(0)) {
      q.resolve(denyOutcome('host-error', 'the engine was closed'));
    }
    await Promise.all(this.#slots.map((s) => s.close()));
  }
}
