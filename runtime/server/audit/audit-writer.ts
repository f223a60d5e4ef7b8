// Group commit of audit records (durability 'normal': one write() to the audit journal; 'full':
// one SQLite transaction): the records written while a commit is pending join it (see
// scheduleCommit for when that is), and each writer's promise resolves only after that commit.
// Answers therefore never precede their audit record, and a burst of N concurrent decisions
// costs a couple of commits (of fsyncs with durability 'full'), not N.
// The writer also drives the store's ingester and indexer (journal -> audit_log -> audit_index),
// off the answer path: in batches once enough records are pending (a batch amortises the pages),
// and whatever is pending once the log has been quiet for a moment. Reads ingest and catch up by
// themselves, so this only keeps that work small and the journal short.
import { DEFAULT_INDEX_BATCH, type AuditStore, type NewAuditRecord } from '../../store/audit-store.ts';

const INDEX_RETRY_MS = 1000;

interface Pending {
  record: NewAuditRecord;
  resolve: () => void;
  reject: (err: unknown) => void;
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
   * Default 1. Worth it when a commit is expensive (durability 'full': one fsync per commit).
   * 0, for durability 'normal', where a commit is one write() to the page cache: the first
   * record of an I/O phase is committed at once (a lone request waits for nothing), the phase's
   * later ones together at its end (setImmediate): under load, two commits per phase, not one
   * per decision (decided on this thread, decisions are never "in flight" in between).
   */
  holdMs?: number;
  /** Pending records at which the writer indexes a batch right after the answers went out. Default 256. */
  indexBatch?: number;
  /** Index whatever is pending once no commit happened for this long. Default 20 ms. */
  indexIdleMs?: number;
  /** Called after each index batch (metrics). */
  onIndex?(rows: number, seconds: number): void;
  /** An index batch failed: the log is intact, reads will retry the catch-up. */
  onIndexError?(err: unknown): void;
}

export class AuditWriter {
  private pending: Pending[] = [];
  private scheduled = false;
  private indexScheduled = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastCommitMs = 0;
  // After a failed index batch, retry only when idle, not after every commit (no log flood).
  private indexFailedAtMs = -Infinity;
  private closed = false;
  /** holdMs 0: a record was already committed at once in the current I/O phase. */
  private phaseHasCommitted = false;
  private readonly indexBatch: number;
  private readonly indexIdleMs: number;
  readonly stats: AuditWriterStats = { commits: 0, records: 0 };

  constructor(
    private readonly store: AuditStore,
    private readonly options: AuditWriterOptions = {},
  ) {
    this.indexBatch = options.indexBatch ?? DEFAULT_INDEX_BATCH;
    this.indexIdleMs = options.indexIdleMs ?? 20;
  }

  /** Resolves once the record is committed; rejects if the commit failed. */
  write(record: NewAuditRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ record, resolve, reject });
      if (!this.scheduled) this.scheduleCommit();
    });
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
      setImmediate(() => (this.phaseHasCommitted = false));
      this.flush();
      return;
    }
    this.scheduled = true;
    if (hold === 0) setImmediate(() => this.flush());
    else if (!this.options.moreComing?.()) process.nextTick(() => this.flush());
    else setTimeout(() => this.flush(), hold);
  }

  /** Commits whatever is pending now. */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const t0 = process.hrtime.bigint();
    try {
      this.store.append(batch.map((p) => p.record));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    this.stats.commits++;
    this.stats.records += batch.length;
    this.options.onCommit?.(batch.length, Number(process.hrtime.bigint() - t0) / 1e9);
    for (const p of batch) p.resolve();
    this.afterCommit();
  }

  /** Commits what is pending and stops driving the indexer (the store indexes the rest on close or open). */
  close(): void {
    this.flush();
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
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

  // One batch per turn of the event loop, so requests are served between batches.
  private indexStep(): void {
    this.indexScheduled = false;
    if (this.closed) return;
    const t0 = process.hrtime.bigint();
    let rows: number;
    try {
      rows = this.store.indexPending(this.indexBatch);
    } catch (err) {
      this.indexFailedAtMs = performance.now();
      this.options.onIndexError?.(err);
      return;
    }
    if (rows > 0) this.options.onIndex?.(rows, Number(process.hrtime.bigint() - t0) / 1e9);
    const quiet = performance.now() - this.lastCommitMs >= this.indexIdleMs;
    if (this.store.unindexed >= this.indexBatch || (quiet && this.store.unindexed > 0)) this.scheduleIndex();
  }
}
