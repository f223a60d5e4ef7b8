// Group commit of audit records: one write() to the audit journal, the records written while a
// commit is pending joining it (see scheduleCommit for when that is), and each writer's promise
// resolves only after that commit. With durability 'full' it resolves only once an fdatasync of
// the journal has returned (on libuv's thread pool, never on this thread): one is in flight at a
// time, and the commits made meanwhile wait together for the next one. Answers therefore never
// precede their audit record, and a burst of N concurrent decisions costs a couple of commits
// (and fdatasyncs), not N. A failed fdatasync fails every record not yet synced (the store cuts
// them off the journal), as a failed write fails its batch.
// The writer also drives the store's ingester and indexer (journal -> audit_log -> audit_index),
// off the answer path: once enough records are pending (a batch amortises the pages), and
// whatever is pending once the log has been quiet for a moment. One transaction per turn of the
// event loop, ingestion and indexing taking turns, each sized by the time the last one took so
// that it holds the main thread at most `indexBudgetMs` (batch-sizer.ts): however many records
// clients make, this work never makes a long turn. Reads ingest and catch up by themselves, so
// this only keeps that work small and the journal short. When it cannot keep up (the database
// refuses writes, or is slower than the decisions), `backlogged` tells the daemon to refuse new
// requests (503, retryable) until it has caught up.
import { DEFAULT_INDEX_BATCH, type AuditStore, type NewAuditRecord } from '../../store/audit-store.ts';
import { threadCpuClock } from '../../os/thread-cpu-clock.ts';
import type { WriteGate } from '../../store/checkpoint/write-hold.ts';
import { BatchSizer } from './batch-sizer.ts';

const INDEX_RETRY_MS = 1000;
/** Records waiting to be ingested at which the daemon refuses new requests (AuditWriter.backlogged). */
export const DEFAULT_MAX_BACKLOG = 16_384;

/**
 * Who waits for a record's commit: told once, after the commit (durability 'full': after the
 * fdatasync that covers it), or with the error that failed it. Neither may throw. The request
 * path's own request object is its waiter: a commit costs it no promise.
 */
export interface CommitWaiter {
  committed(): void;
  commitFailed(err: unknown): void;
}

export interface AuditWriterStats {
  commits: number;
  records: number;
}

export interface AuditWriterOptions {
  /** Called after each commit (metrics). */
  onCommit?(batchSize: number, seconds: number): void;
  /**
   * True while more decisions are about to arrive (evaluations in flight). The batch is then
   * held for `holdMs` so they join it: under load fewer, larger commits; with a single client
   * nothing is in flight at commit time and the record is committed at once.
   */
  moreComing?(): boolean;
  /**
   * Default 1. Worth it when a commit is expensive and made on this thread.
   * 0, for the daemon, where a commit is one write() to the page cache: the first
   * record of an I/O phase is committed at once (a lone request waits for nothing), the phase's
   * later ones together at its end (setImmediate): under load, two commits per phase, not one
   * per decision (decided on this thread, decisions are never "in flight" in between).
   */
  holdMs?: number;
  /** Pending records at which the writer starts ingesting and indexing, right after the answers went out. Default 256. */
  indexBatch?: number;
  /** How long one ingest or index batch may hold the main thread (ms of `clock`). Default 1. */
  indexBudgetMs?: number;
  /**
   * The clock batches are timed with (ms). Default: this thread's CPU time (os/thread-cpu-clock.ts),
   * what the work costs the thread, whatever time the OS gives other threads meanwhile (a batch
   * timed on the wall clock of a busy machine would shrink to nothing); performance.now where it
   * cannot be read. A seam for tests.
   */
  clock?: () => number;
  /** Records waiting to be ingested at which `backlogged` turns true. Default DEFAULT_MAX_BACKLOG. */
  maxBacklog?: number;
  /** Index whatever is pending once no commit happened for this long. Default 20 ms. */
  indexIdleMs?: number;
  /** Called after each ingest or index batch (metrics), with its duration on `clock`. */
  onIndex?(rows: number, ms: number, kind: 'ingest' | 'index'): void;
  /** An index batch failed: the log is intact, reads will retry the catch-up. */
  onIndexError?(err: unknown): void;
  /**
   * Entered around each ingest and index batch: while the WAL checkpoint worker holds it (its last pass, see
   * store/checkpoint/write-hold.ts), the write waits for the next millisecond instead. Never
   * blocks the thread.
   */
  writeGate?: WriteGate;
}

/** Batches up to this size leave their arrays for the next ones (a larger one's would hold its storage). */
const REUSED_BATCH = 1024;

/** Empties `array` keeping its storage, and keeps it in `spares` (two at most) unless it was large. */
function reuse<T>(array: T[], spares: T[][]): void {
  if (array.length > REUSED_BATCH || spares.length >= 2) return;
  while (array.length > 0) array.pop();
  spares.push(array);
}

/** How long a write deferred by deferWrites waits before it looks again. */
const DEFER_MS = 1;

export class AuditWriter {
  /** Records waiting for the next commit, and who waits for each (same index). */
  private pending: NewAuditRecord[] = [];
  private waiters: CommitWaiter[] = [];
  /** Emptied arrays of committed batches, for the next ones (emptied by pop, they keep their
   * storage: a new array per batch made ~0.3 KB of garbage per decision of a lone client). */
  private readonly emptyRecords: NewAuditRecord[][] = [];
  private readonly emptyWaiters: CommitWaiter[][] = [];
  /** Durability 'full': written to the journal, waiting for an fdatasync (the one under way, or the next). */
  private unsynced: CommitWaiter[] = [];
  /** Resolves close() once nothing waits for an fdatasync. */
  private syncIdle: Array<() => void> = [];
  private scheduled = false;
  private indexScheduled = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastCommitMs = 0;
  // After a failed index batch, retry only when idle, not after every commit (no log flood).
  private indexFailedAtMs = -Infinity;
  private closed = false;
  /** holdMs 0: a record was already committed at once in the current I/O phase. */
  private phaseHasCommitted = false;
  private readonly indexBatch: number;
  private readonly indexIdleMs: number;
  private readonly maxBacklog: number;
  private readonly clock: () => number;
  private readonly budgetMs: number;
  private readonly sizers: Record<'ingest' | 'index', BatchSizer>;
  /** Which of the two the next step does first (they take turns, so neither starves). */
  private nextStep: 'ingest' | 'index' = 'ingest';
  readonly stats: AuditWriterStats = { commits: 0, records: 0 };

  constructor(
    private readonly store: AuditStore,
    private readonly options: AuditWriterOptions = {},
  ) {
    this.indexBatch = options.indexBatch ?? DEFAULT_INDEX_BATCH;
    this.indexIdleMs = options.indexIdleMs ?? 20;
    this.maxBacklog = options.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    this.clock = options.clock ?? threadCpuClock() ?? (() => performance.now());
    this.budgetMs = options.indexBudgetMs ?? 1;
    const budgetMs = this.budgetMs;
    this.sizers = { ingest: new BatchSizer({ budgetMs }), index: new BatchSizer({ budgetMs }) };
  }

  /** Records committed to the journal and not yet in the database. */
  get backlog(): number {
    return this.store.uningested;
  }

  /** Too many records wait to be ingested: new requests should be refused until it catches up. */
  get backlogged(): boolean {
    return this.store.uningested >= this.maxBacklog;
  }

  /** The rows the next ingest and index batches may take (what the clock measured so far allows). */
  get batchSizes(): { ingest: number; index: number } {
    return { ingest: this.sizers.ingest.size, index: this.sizers.index.size };
  }

  /** Resolves once the record is committed; rejects if the commit failed. */
  write(record: NewAuditRecord): Promise<void> {
    return new Promise((resolve, reject) => this.commit(record, { committed: resolve, commitFailed: reject }));
  }

  /** Commits the record with the next batch and tells `waiter` (perhaps before this returns). */
  commit(record: NewAuditRecord, waiter: CommitWaiter): void {
    this.pending.push(record);
    this.waiters.push(waiter);
    if (!this.scheduled) this.scheduleCommit();
  }

  /**
   * When the pending batch is committed:
   * - holdMs 0 (a commit is one write()): the first record of an I/O phase at once, so a lone
   *   request waits for nothing; the phase's later ones together at its end (setImmediate).
   * - otherwise (a commit is an fsync): with evaluations in flight, held for holdMs so that they
   *   join; with none, as soon as the current task's continuations have run (process.nextTick
   *   fires after the microtask queue drained).
   */
  private scheduleCommit(): void {
    const hold = this.options.holdMs ?? 1;
    if (hold === 0 && !this.phaseHasCommitted) {
      this.phaseHasCommitted = true;
      setImmediate(this.phaseEnded);
      this.flush();
      return;
    }
    this.scheduled = true;
    if (hold === 0) setImmediate(() => this.flush());
    else if (!this.options.moreComing?.()) process.nextTick(() => this.flush());
    else setTimeout(() => this.flush(), hold);
  }

  private readonly phaseEnded = (): void => {
    this.phaseHasCommitted = false;
  };

  /** Commits whatever is pending now (durability 'full': acknowledged once the next fdatasync returned). */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    const waiters = this.waiters;
    // (A waiter's call may commit, and flush, again meanwhile: it gathers in other arrays.)
    this.pending = this.emptyRecords.pop() ?? [];
    this.waiters = this.emptyWaiters.pop() ?? [];
    try {
      this.commitBatch(batch, waiters);
    } finally {
      reuse(batch, this.emptyRecords);
      reuse(waiters, this.emptyWaiters);
    }
  }

  private commitBatch(batch: NewAuditRecord[], waiters: CommitWaiter[]): void {
    const t0 = performance.now();
    try {
      this.store.append(batch);
    } catch (err) {
      for (const w of waiters) w.commitFailed(err);
      return;
    }
    this.stats.commits++;
    this.stats.records += batch.length;
    if (this.store.syncsJournal) {
      for (const w of waiters) this.unsynced.push(w);
      this.syncJournal();
      return;
    }
    this.options.onCommit?.(batch.length, (performance.now() - t0) / 1000);
    for (const w of waiters) w.committed();
    this.afterCommit();
  }

  /**
   * Durability 'full': one fdatasync at a time, covering every record written before it starts;
   * the records written while it runs wait for the next one (group commit). onCommit reports the
   * records it made durable and how long it took.
   */
  private syncJournal(): void {
    if (this.store.syncing || this.unsynced.length === 0) return;
    const covered = this.unsynced;
    this.unsynced = [];
    const t0 = performance.now();
    this.store.sync((err) => {
      if (err !== null) {
        // The store dropped every record not yet synced, so every writer still waiting fails
        // (this runs in the same turn as the drop: no record was written in between).
        const failed = [...covered, ...this.unsynced];
        this.unsynced = [];
        for (const w of failed) w.commitFailed(err);
      } else {
        this.options.onCommit?.(covered.length, (performance.now() - t0) / 1000);
        for (const w of covered) w.committed();
        this.afterCommit();
        this.syncJournal();
      }
      if (this.unsynced.length === 0 && !this.store.syncing) for (const resolve of this.syncIdle.splice(0)) resolve();
    });
  }

  /**
   * Commits what is pending and stops driving the indexer (the store indexes the rest on close or
   * open). Resolves once no record waits for an fdatasync (durability 'full'), so that the store
   * can be closed after it.
   */
  close(): Promise<void> {
    this.closed = true;
    this.flush();
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.unsynced.length === 0 && !this.store.syncing) return Promise.resolve();
    return new Promise((resolve) => this.syncIdle.push(resolve));
  }

  private afterCommit(): void {
    if (this.closed) return;
    this.lastCommitMs = performance.now();
    const backingOff = this.lastCommitMs - this.indexFailedAtMs < INDEX_RETRY_MS;
    if (this.store.unindexed >= this.indexBatch && !backingOff) this.scheduleIndex();
    else this.idleTimer ??= setTimeout(() => this.onIdleTimer(), this.indexIdleMs).unref();
  }

  private onIdleTimer(): void {
    this.idleTimer = undefined;
    if (this.closed) return;
    const quietFor = performance.now() - this.lastCommitMs;
    if (quietFor < this.indexIdleMs)
      this.idleTimer = setTimeout(() => this.onIdleTimer(), this.indexIdleMs - quietFor).unref();
    else if (this.store.unindexed > 0) this.scheduleIndex();
  }

  // Two hops: after this turn's check phase, where the batch commit of this I/O phase and the
  // answers it releases are queued, so a batch of the index never delays an answer.
  private scheduleIndex(): void {
    if (this.indexScheduled) return;
    this.indexScheduled = true;
    setImmediate(() => setImmediate(() => this.indexStep()));
  }

  // One step per turn of the event loop, so requests are served between steps: an ingest batch
  // and an index batch, each sized to the budget, the second only with what the first left of it.
  // They take turns going first, so that neither starves the other under load.
  private indexStep(): void {
    this.indexScheduled = false;
    if (this.closed) return;
    const gate = this.options.writeGate;
    if (gate !== undefined && !gate.tryEnter()) {
      this.indexScheduled = true;
      setTimeout(() => this.indexStep(), DEFER_MS).unref();
      return;
    }
    try {
      const first = this.nextStep;
      const second = first === 'ingest' ? 'index' : 'ingest';
      this.nextStep = second;
      const used = this.runBatch(first, 1);
      if (used < this.budgetMs) this.runBatch(second, 1 - used / this.budgetMs);
      gate?.leave();
    } catch (err) {
      gate?.leave();
      this.indexFailedAtMs = performance.now();
      this.options.onIndexError?.(err);
      // Tried again in a while even if no record comes meanwhile: while the backlog is too long
      // the daemon takes no request, so no commit would ever bring the next attempt.
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        if (!this.closed && this.store.unindexed > 0) this.scheduleIndex();
      }, INDEX_RETRY_MS).unref();
      return;
    }
    const quiet = performance.now() - this.lastCommitMs >= this.indexIdleMs;
    if (this.store.unindexed >= this.indexBatch || (quiet && this.store.unindexed > 0)) this.scheduleIndex();
    // The rest once the log is quiet (or with the next batch, if one comes first).
    else if (this.store.unindexed > 0)
      this.idleTimer ??= setTimeout(() => this.onIdleTimer(), this.indexIdleMs).unref();
  }

  /**
   * One ingest or index batch of `share` of the rows its budget allows, timed to size the next;
   * returns the time it took.
   */
  private runBatch(kind: 'ingest' | 'index', share: number): number {
    if (kind === 'ingest' && this.store.uningested === 0) return 0;
    const sizer = this.sizers[kind];
    const maxRows = Math.max(1, Math.floor(sizer.size * share));
    const t0 = this.clock();
    const rows = kind === 'ingest' ? this.store.ingestSome(maxRows) : this.store.indexSome(maxRows);
    const ms = this.clock() - t0;
    sizer.observe(rows, ms);
    if (rows > 0) this.options.onIndex?.(rows, ms, kind);
    return ms;
  }
}
