// The audit index: the query columns of every audit record (audit_index), derived from the log
// (audit_log) in batches, off the decision path. One transaction of a few hundred rows
// amortises the pages of the five indexes that a per-decision commit would each touch.
// The index is derived data: the rows and the cursor (audit_indexer.indexed_through) commit
// together, so after a kill -9 at any moment the next catch-up resumes exactly where the last
// committed batch ended, reading the records from their JSON.
import type Database from 'better-sqlite3';
import type { AuditRecord } from '../wire/index.ts';

/** The fields of a record the index keeps (typed here, not via audit-store.ts, which imports this file). */
export type IndexedFields = Pick<AuditRecord, 'time' | 'decisionId' | 'vm' | 'policy' | 'decision'>;

/** The query columns of one record, as stored in audit_index. */
export interface AuditIndexRow {
  seq: number;
  decisionId: string;
  timeMs: number;
  vmUuid: string | null;
  vmName: string | null;
  policy: string | null;
  decision: string;
}

/** Throws on a record whose columns cannot be indexed (the append then fails, as v1's did). */
export function indexRowOf(seq: number, r: IndexedFields): AuditIndexRow {
  const timeMs = Date.parse(r.time);
  if (!Number.isFinite(timeMs))
    throw new TypeError(`audit record ${r.decisionId}: time is not an ISO 8601 date: ${JSON.stringify(r.time)}`);
  return {
    seq,
    decisionId: r.decisionId,
    timeMs,
    vmUuid: r.vm?.uuid ?? null,
    vmName: r.vm?.name ?? null,
    policy: r.policy?.name ?? null,
    decision: r.decision,
  };
}

/** Rows fed by the writer and not yet indexed, beyond which the feed is dropped (the docs remain). */
const MAX_FED = 65_536;
/** Batch size of a catch-up (before a read, at open). */
const CATCH_UP_BATCH = 2_048;

export class AuditIndexer {
  // Rows the writer committed on this connection, so indexing them needs no JSON.parse.
  private readonly fed = new Map<number, AuditIndexRow>();
  private readonly stmts;
  private readonly indexBatch;
  private readonly rebuildAll;

  constructor(db: Database.Database) {
    this.stmts = {
      cursor: db.prepare<[], number>('SELECT indexed_through FROM audit_indexer WHERE id = 1').pluck(),
      top: db.prepare<[], number | null>('SELECT max(seq) FROM audit_log').pluck(),
      pendingSeqs: db
        .prepare<[number, number], number>('SELECT seq FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?')
        .pluck(),
      doc: db.prepare<[number], string>('SELECT doc FROM audit_log WHERE seq = ?').pluck(),
      docsBetween: db.prepare<[number, number, number], { seq: number; doc: string }>(
        'SELECT seq, doc FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
      ),
      // OR REPLACE: the index is derived, so a row found already there is simply rewritten.
      insert: db.prepare(
        'INSERT OR REPLACE INTO audit_index (seq, decision_id, time, vm_uuid, vm_name, policy, decision) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      setCursor: db.prepare<[number]>('UPDATE audit_indexer SET indexed_through = ? WHERE id = 1'),
      clear: db.prepare('DELETE FROM audit_index'),
    };
    this.indexBatch = db.transaction((maxRows: number): number[] => {
      const seqs = this.stmts.pendingSeqs.all(this.stmts.cursor.get()!, maxRows);
      for (const seq of seqs) this.insert(this.fed.get(seq) ?? this.fromDoc(seq, this.stmts.doc.get(seq)!));
      // Never lowered: the cursor is also the high-water mark of seq.
      if (seqs.length > 0) this.stmts.setCursor.run(seqs[seqs.length - 1]!);
      return seqs;
    });
    this.rebuildAll = db.transaction(() => {
      this.stmts.clear.run();
      const through = this.stmts.cursor.get()!;
      // In chunks: a statement cannot stay open while the same connection writes.
      let after = 0;
      for (;;) {
        const rows = this.stmts.docsBetween.all(after, through, CATCH_UP_BATCH);
        if (rows.length === 0) break;
        for (const { seq, doc } of rows) this.insert(this.fromDoc(seq, doc));
        after = rows[rows.length - 1]!.seq;
      }
    });
  }

  /** Remembers rows just committed to the log, to index them later without re-reading them. */
  feed(rows: readonly AuditIndexRow[]): void {
    if (this.fed.size + rows.length > MAX_FED) this.fed.clear();
    for (const row of rows) this.fed.set(row.seq, row);
  }

  /** Rows fed and not yet indexed (rows appended by another connection are not counted). */
  get fedPending(): number {
    return this.fed.size;
  }

  /** Indexes up to `maxRows` of the oldest unindexed records in one transaction; returns how many. */
  indexPending(maxRows: number): number {
    const seqs = this.indexBatch.immediate(maxRows);
    for (const seq of seqs) this.fed.delete(seq);
    return seqs.length;
  }

  /** Indexes every committed record: reads see the whole log after this. */
  catchUp(): void {
    // Cheap when there is nothing to do: two B-tree seeks, no write transaction.
    if ((this.stmts.top.get() ?? 0) <= this.stmts.cursor.get()!) return;
    while (this.indexPending(CATCH_UP_BATCH) > 0);
  }

  /** Derives the whole index again from the records' JSON (repair; the fed rows are not used). */
  rebuild(): void {
    this.rebuildAll.immediate();
    this.catchUp();
  }

  /** The high-water mark: no seq at or below it may be handed out again. */
  indexedThrough(): number {
    return this.stmts.cursor.get()!;
  }

  private insert(r: AuditIndexRow): void {
    this.stmts.insert.run(r.seq, r.decisionId, r.timeMs, r.vmUuid, r.vmName, r.policy, r.decision);
  }

  private fromDoc(seq: number, doc: string): AuditIndexRow {
    return indexRowOf(seq, JSON.parse(doc) as IndexedFields);
  }
}
