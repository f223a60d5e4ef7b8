// Group commit of audit records: every record written during one task of the event loop (its
// synchronous part and the promise continuations it triggers) is committed in a single SQLite
// transaction, and each writer's promise resolves only after that commit. Answers therefore
// never precede their audit record, and a burst of N concurrent decisions costs one commit
// (one fsync with durability 'full'), not N.
import type { AuditStore, NewAuditRecord } from '../../store/audit-store.ts';

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
   * 0: under load, commit at the end of the event loop's current I/O phase instead (setImmediate),
   * which batches whatever completed in that phase without adding latency; for durability
   * 'normal', where a commit is a few tens of µs of page-cache writes.
   */
  holdMs?: number;
}

export class AuditWriter {
  private pending: Pending[] = [];
  private scheduled = false;
  readonly stats: AuditWriterStats = { commits: 0, records: 0 };

  constructor(
    private readonly store: AuditStore,
    private readonly options: AuditWriterOptions = {},
  ) {}

  /** Resolves once the record is committed; rejects if the commit failed. */
  write(record: NewAuditRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ record, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Under load, hold the batch so that the decisions being evaluated join it. Otherwise commit
        // as soon as the current task's continuations have run (process.nextTick fires after the
        // microtask queue drained): a lone request never waits for a turn of the event loop.
        const hold = this.options.holdMs ?? 1;
        if (!this.options.moreComing?.()) process.nextTick(() => this.flush());
        else if (hold > 0) setTimeout(() => this.flush(), hold);
        else setImmediate(() => this.flush());
      }
    });
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
  }
}
