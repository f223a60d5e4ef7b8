// The main thread's side of the WAL checkpoint worker (checkpoint-worker.ts): starts it, reports
// what it does, and restarts it with a back-off when it stops. A checkpointer that fails or dies
// costs decisions nothing (their commits go to the WAL, which then grows until it is back): it is
// reported (onProblem, `problem`, and the daemon's log, metrics and health), never thrown.
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../bootstrap/worker-thread.ts';
import type { Durability } from '../database.ts';
import { MAX_HOLD_MS, newWriteHold, WriteHold, type WriteGate } from './write-hold.ts';
import { lookAtWal } from './wal-index.ts';
import type {
  CheckpointReport,
  CheckpointSeams,
  CheckpointWorkerInit,
  FromCheckpointWorker,
  ToCheckpointWorker,
} from './protocol.ts';

const ENTRY = new URL('./checkpoint-worker.ts', import.meta.url);

/**
 * Frames (pages) waiting in the WAL at which the worker checkpoints: 1000, SQLite's own default.
 * The checkpoint runs off the main thread, so nothing is saved by making it rarer, and a short
 * log keeps the main thread's reads (which look every page up in the WAL's index first) and each
 * checkpoint (~4 MB to copy and fsync) small. Polled every 100 ms: at the daemon's peak audit
 * rate (~4,000 decisions/s, ~3 MB/s of WAL) the log overshoots it by well under 1 MB.
 */
export const DEFAULT_CHECKPOINT_PAGES = 1000;
const DEFAULT_POLL_MS = 100;
/** How long close() waits for the worker to finish a checkpoint and close its connection. */
const STOP_GRACE_MS = 2000;
/** How often the main thread asks the worker again to start a complete log over. */
const RESTART_ASK_MS = 50;

export interface WalCheckpointerOptions {
  database: string;
  durability: Durability;
  /** Default DEFAULT_CHECKPOINT_PAGES. */
  thresholdPages?: number;
  /** Default 100 ms. */
  pollMs?: number;
  /** Back-off of the worker's restarts and of its retries after a failed checkpoint (ms). Default 1 s to 60 s. */
  retryMs?: { first: number; max: number };
  onCheckpoint?(report: CheckpointReport): void;
  /** A checkpoint failed ('failed'), or the worker stopped and will be restarted ('stopped'). */
  onProblem?(kind: 'failed' | 'stopped', message: string): void;
  /** Something that costs only efficiency (the wal-index cannot be read: the worker checkpoints at every look). */
  onWarning?(message: string): void;
  seams?: CheckpointSeams;
}

export interface WalCheckpointerStats {
  checkpoints: number;
  busy: number;
  failures: number;
  /** Times the worker was started again after it stopped. */
  restarts: number;
}

export class WalCheckpointer {
  readonly stats: WalCheckpointerStats = { checkpoints: 0, busy: 0, failures: 0, restarts: 0 };
  readonly #options: WalCheckpointerOptions;
  readonly #init: CheckpointWorkerInit;
  readonly #hold: WriteHold;
  readonly #gate: WriteGate;
  #restartAskedAt = -Infinity;
  /** Since when the main thread has found the log complete (its writes deferred). */
  #completeSince: number | null = null;
  #worker: Worker | null = null;
  #exited: Promise<void> = Promise.resolve();
  #ready = false;
  #problem: string | null = null;
  #lastError: string | undefined;
  #restartMs = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #nextCheck = 1;
  #readyWaiters: Array<() => void> = [];
  readonly #checks = new Map<number, { resolve(frames: number | null): void; reject(err: Error): void }>();

  constructor(options: WalCheckpointerOptions) {
    this.#options = options;
    const retryMs = options.retryMs ?? { first: 1000, max: 60_000 };
    const hold = newWriteHold();
    this.#hold = new WriteHold(hold);
    this.#gate = {
      tryEnter: () => {
        if (!this.#hold.tryEnter()) return false;
        if (!this.#logComplete()) return true;
        this.#hold.leave();
        this.#askRestart();
        return false;
      },
      leave: () => this.#hold.leave(),
    };
    this.#init = {
      hold,
      database: options.database,
      durability: options.durability,
      thresholdPages: options.thresholdPages ?? DEFAULT_CHECKPOINT_PAGES,
      pollMs: options.pollMs ?? DEFAULT_POLL_MS,
      retryMs,
      ...(options.seams !== undefined ? { seams: options.seams } : {}),
    };
    this.#spawn();
  }

  /** What is wrong: the last checkpoint failed, or the worker stopped (and is not back yet). Null otherwise. */
  get problem(): string | null {
    return this.#problem;
  }

  /**
   * Around each write the main thread can defer (audit ingestion and indexing): the worker holds
   * them while its last checkpoint pass runs, so that the log can start again from its beginning
   * (write-hold.ts; never longer than MAX_HOLD_MS). And while the log is complete (every frame
   * copied back, or empty), a write is deferred and the worker asked to write first: the first
   * write to such a log starts it again and fsyncs its header, which must not be the main thread.
   * With no worker running the write goes ahead (and makes that fsync itself).
   */
  get writeGate(): WriteGate {
    return this.#gate;
  }

  /**
   * The log is complete and a worker runs that can start it again. Not for longer than a hold
   * (MAX_HOLD_MS): a worker that cannot write never holds the audit back longer.
   */
  #logComplete(): boolean {
    if (!this.#ready || this.#worker === null || this.#closing) return false;
    const wal = lookAtWal(this.#options.database);
    if (!wal.ok || wal.framesWaiting > 0) {
      this.#completeSince = null;
      return false;
    }
    const now = performance.now();
    this.#completeSince ??= now;
    return now - this.#completeSince < MAX_HOLD_MS;
  }

  #askRestart(): void {
    const now = performance.now();
    if (now - this.#restartAskedAt < RESTART_ASK_MS) return;
    this.#restartAskedAt = now;
    this.#worker?.postMessage({ type: 'restart' } satisfies ToCheckpointWorker);
  }

  /** The worker runs and its last checkpoint did not fail. */
  get up(): boolean {
    return this.#ready && this.#problem === null;
  }

  /** Resolves once a worker runs (this one, or the next one started after it stopped). */
  ready(): Promise<void> {
    if (this.#ready) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /**
   * Makes the worker look at the WAL now (and checkpoint if enough waits, whatever its back-off);
   * resolves with the frames waiting afterwards (null: the wal-index could not be read). Rejects
   * when the worker is not running.
   */
  checkNow(): Promise<number | null> {
    const worker = this.#worker;
    if (worker === null || this.#closing)
      return Promise.reject(new Error(this.#problem ?? 'the WAL checkpoint worker is not running'));
    const id = this.#nextCheck++;
    return new Promise((resolve, reject) => {
      this.#checks.set(id, { resolve, reject });
      worker.postMessage({ type: 'check', id } satisfies ToCheckpointWorker);
    });
  }

  /** Stops the worker (after the checkpoint it may be running) and closes its connection. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      clearTimeout(this.#restartTimer);
      const worker = this.#worker;
      if (worker === null) return;
      worker.postMessage({ type: 'stop' } satisfies ToCheckpointWorker);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), STOP_GRACE_MS)));
      if ((await Promise.race([this.#exited, late])) === 'late') await worker.terminate();
      clearTimeout(timer);
      await this.#exited;
    })());
  }

  #spawn(): void {
    this.#ready = false;
    this.#lastError = undefined;
    const worker = startWorker(ENTRY, { workerData: this.#init, resourceLimits: { maxOldGenerationSizeMb: 64 } });
    // Never what keeps a process alive: the daemon's sockets do that.
    worker.unref();
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromCheckpointWorker) => this.#onMessage(m));
    worker.on('error', (err) => (this.#lastError = err.message));
    worker.on('exit', (code) => this.#onExit(worker, code));
  }

  #onMessage(m: FromCheckpointWorker): void {
    switch (m.type) {
      case 'ready':
        this.#ready = true;
        this.#problem = null;
        for (const resolve of this.#readyWaiters.splice(0)) resolve();
        break;
      case 'checkpointed':
        this.stats.checkpoints++;
        if (m.report.busy) this.stats.busy++;
        this.#problem = null;
        this.#restartMs = 0; // it works again: the next stop restarts it at once
        this.#options.onCheckpoint?.(m.report);
        break;
      case 'failed':
        this.stats.failures++;
        this.#problem = `the last WAL checkpoint failed: ${m.message}`;
        this.#options.onProblem?.('failed', m.message);
        break;
      case 'wal-index-unreadable':
        this.#options.onWarning?.(
          `the WAL's index cannot be read (${m.reason}): the checkpoint worker checkpoints at every look instead of past ${this.#init.thresholdPages} pages`,
        );
        break;
      case 'checked':
        this.#checks.get(m.id)?.resolve(m.framesWaiting);
        this.#checks.delete(m.id);
        break;
    }
  }

  #onExit(worker: Worker, code: number): void {
    if (this.#worker !== worker) return;
    this.#worker = null;
    this.#hold.lower(); // it may have stopped in a held pass
    this.#ready = false;
    const why = `the WAL checkpoint worker stopped (exit code ${code})${this.#lastError !== undefined ? `: ${this.#lastError}` : ''}`;
    for (const c of this.#checks.values()) c.reject(new Error(why));
    this.#checks.clear();
    if (this.#closing) return;
    this.#problem = why;
    const retry = this.#init.retryMs;
    this.#restartMs = this.#restartMs === 0 ? retry.first : Math.min(2 * this.#restartMs, retry.max);
    this.#options.onProblem?.('stopped', `${why}; restarting it in ${this.#restartMs} ms`);
    this.#restartTimer = setTimeout(() => {
      this.stats.restarts++;
      this.#spawn();
    }, this.#restartMs);
    this.#restartTimer.unref();
  }
}
