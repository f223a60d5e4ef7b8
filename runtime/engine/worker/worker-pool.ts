// A fixed pool of evaluation workers with a FIFO queue in front. Every worker holds every loaded
// policy, so any idle worker can take any job.
import { denyOutcome } from '../deny-outcome.ts';
import type { Outcome } from '../outcome.ts';
import { WorkerSlot, type EvaluateJob, type LoadedPolicy, type WorkerSlotOptions } from './worker-slot.ts';

interface Queued {
  job: EvaluateJob;
  deadlineMs: number;
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

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`worker pool size must be a positive integer, got ${options.size}`);
    }
    this.#slots = Array.from({ length: options.size }, () => new WorkerSlot(this.#policies, options));
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
      this.#queue.push({ job, deadlineMs, resolve });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (this.#busy.has(slot)) continue;
      const next = this.#queue.shift()!;
      this.#busy.add(slot);
      void slot
        .run(next.job, next.deadlineMs)
        .catch(
          (err: unknown): Outcome =>
            denyOutcome(
              'host-error',
              `engine bug in the worker pool: ${err instanceof Error ? err.message : String(err)}`,
            ),
        )
        .then((outcome) => {
          this.#busy.delete(slot);
          next.resolve(outcome);
          this.#dispatch();
        });
    }
  }

  async close(): Promise<void> {
    for (const q of this.#queue.splice(0)) {
      q.resolve(denyOutcome('host-error', 'the engine was closed'));
    }
    await Promise.all(this.#slots.map((s) => s.close()));
  }
}
