// Group commit of audit records: every record written during one turn of the event loop is
// committed in a single SQLite transaction, and each writer's promise resolves only after that
// commit. Answers therefore never precede their audit record, and a burst of N concurrent
// decisions costs one commit (one fsync with durability 'full'), not N.
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
        // setImmediate runs after the current I/O phase: every decision completed in it joins the batch.
        if (this.options.moreComing?.()) setTimeout(() => this.flush(), this.options.holdMs ?? 1);
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
