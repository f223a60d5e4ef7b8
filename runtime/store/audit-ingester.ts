// The ingester: moves acknowledged records from the audit journal (audit-journal.ts) into
// audit_log, off the decision path, in one transaction per batch that also advances
// audit_ingester.ingested_through. After a kill -9 at any moment, recovery ingests exactly the
// journal's frames above that seq, so no record is lost and none is ingested twice. Once every
// frame is ingested the journal is told (drained): with durability 'normal' it can then be
// emptied at any moment; with 'full' it first waits for the ingest to be durable
// (audit-journal-synced.ts).
import type Database from 'better-sqlite3';
import type { JournalFrame } from './audit-journal.ts';

/** The journal as the ingester sees it. */
export interface DrainableJournal {
  /** Every frame handed to the ingester is in audit_log; `aboveBytes`: the size worth emptying. */
  drained(aboveBytes: number): void;
}

/** Journal size beyond which it is emptied once everything in it is ingested. */
export const DEFAULT_JOURNAL_TRUNCATE_BYTES = 4 * 1024 * 1024;
/** Batch size of ingestAll (before a read, at open, at close). */
const INGEST_ALL_BATCH = 2_048;

export class AuditIngester {
  // In the journal, not yet in audit_log, in seq order: what recovery would find above the mark.
  private pending: JournalFrame[] = [];
  private readonly stmts;
  private readonly insertBatch;

  constructor(
    db: Database.Database,
    private readonly journal: DrainableJournal | null,
    private readonly truncateAboveBytes = DEFAULT_JOURNAL_TRUNCATE_BYTES,
  ) {
    this.stmts = {
      mark: db.prepare<[], number>('SELECT ingested_through FROM audit_ingester WHERE id = 1').pluck(),
      // A doc given as its UTF-8 bytes is bound as a blob, and stored as the text they encode
      // (the database's encoding is UTF-8): audit_log.doc is text, whichever the frame holds.
      insert: db.prepare<[number, string | Buffer]>('INSERT INTO audit_log (seq, doc) VALUES (?, CAST(? AS TEXT))'),
      setMark: db.prepare<[number]>('UPDATE audit_ingester SET ingested_through = ? WHERE id = 1'),
    };
    // Plain INSERT: a seq already in the log is a bug or a foreign database, and fails loudly.
    // The first `n` of `frames`.
    this.insertBatch = db.transaction((frames: readonly JournalFrame[], n: number) => {
      for (let k = 0; k < n; k++) this.stmts.insert.run(frames[k]!.seq, frames[k]!.doc);
      this.stmts.setMark.run(frames[n - 1]!.seq);
    });
  }

  /** Seqs at or below this are in audit_log (or were, before retention): also a high-water mark. */
  ingestedThrough(): number {
    return this.stmts.mark.get()!;
  }

  /** Takes the frames recovered from the journal at open; those already ingested are skipped. */
  recover(frames: readonly JournalFrame[]): number {
    const mark = this.ingestedThrough();
    const todo = frames.filter((f) => f.seq > mark);
    this.pending.push(...todo);
    return todo.length;
  }

  /** Records frames just written to the journal (in seq order, above every pending one). */
  add(frames: readonly JournalFrame[]): void {
    for (const f of frames) this.pending.push(f);
  }

  /** Frames written to the journal and not yet ingested. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Ingests up to `maxRows` of the oldest pending frames in one transaction; returns how many. */
  ingest(maxRows: number): number {
    const n = Math.min(maxRows, this.pending.length);
    if (n === 0) return 0;
    this.insertBatch.immediate(this.pending, n);
    // Removed in place: slicing the rest off made a copy of the whole backlog per batch, garbage
    // on the main thread that grew with the backlog (~0.9 KB per decision under a flood).
    this.pending.copyWithin(0, n);
    this.pending.length -= n;
    this.truncateIfDone(this.truncateAboveBytes);
    return n;
  }

  /** Ingests every pending frame: audit_log holds every acknowledged record after this. */
  ingestAll(): void {
    while (this.ingest(INGEST_ALL_BATCH) > 0);
  }

  /** Tells the journal when everything in it is ingested (it empties itself if over `aboveBytes`). */
  truncateIfDone(aboveBytes = 0): void {
    if (this.journal && this.pending.length === 0) this.journal.drained(aboveBytes);
  }
}
