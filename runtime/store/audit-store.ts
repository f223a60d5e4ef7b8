// The audit log: one row per decision, the full record as JSON, in audit_log.
// A decision's commit is one write() to the audit journal (audit-journal.ts, `<db>-audit-journal`
// beside the database), and the ingester (audit-ingester.ts) moves the records into audit_log off
// the decision path. With durability 'full' the records written are acknowledged only once an
// fdatasync on the thread pool returned (sync; audit-journal-synced.ts), they are ingested only
// then, and every transaction of this store runs with synchronous=NORMAL: the main thread never
// syncs, and the journal keeps the records until the WAL holding their ingest is synced.
// Queries go through the derived index (audit-indexer.ts). Every read first ingests whatever is
// in the journal and brings the index up to date, so it sees every acknowledged record.
import type Database from 'better-sqlite3';
import { AUDIT_RECORD_SCHEMA_VERSION, type AuditRecord } from '../wire/index.ts';
import { AuditIndexer, indexRowOf, type AuditIndexRow } from './audit-indexer.ts';
import { AuditIngester } from './audit-ingester.ts';
import { flatJson, flatJsonBytes } from './flat-json.ts';
import type { AuditJournal, JournalFrame } from './audit-journal.ts';
import { SyncedAuditJournal } from './audit-journal-synced.ts';

/**
 * A record as its producer builds it: the store assigns seq and stamps schemaVersion. A producer
 * may stamp it itself, as the record's first field (the request path does: every decision makes
 * one): the store then writes the record as it is, the same JSON without a copy of the record.
 */
export type NewAuditRecord = Omit<AuditRecord, 'seq' | 'schemaVersion'> & {
  schemaVersion?: typeof AUDIT_RECORD_SCHEMA_VERSION;
};

export interface AuditFilter {
  sinceMs?: number;
  untilMs?: number;
  /** Matches VM uuid or name. */
  vm?: string;
  decision?: 'allow' | 'deny';
  policy?: string;
  limit: number;
  /** Exclusive: records after this seq in the query's order. */
  afterSeq?: number;
  order: 'asc' | 'desc';
}

export interface RetentionRule {
  /** Delete records older than this. */
  maxAgeMs?: number;
  /** Keep at most this many (newest) records. */
  maxRecords?: number;
}

/** The record stamped with its schema version, first (as it is when its producer stamped it). */
const stamped = (r: NewAuditRecord): NewAuditRecord =>
  r.schemaVersion === AUDIT_RECORD_SCHEMA_VERSION ? r : { schemaVersion: AUDIT_RECORD_SCHEMA_VERSION, ...r };

/** The record's JSON, schemaVersion first: JSON.stringify's text, made flat (flat-json.ts). */
export function auditDoc(r: NewAuditRecord): string {
  return flatJson(stamped(r));
}

/**
 * auditDoc's UTF-8 bytes, in a buffer of their own: what a commit writes to the journal and
 * audit_log stores (as text). Without the string between: every decision makes one, ~0.8 KB on
 * the main isolate's heap, where the bytes live outside it.
 */
export function auditDocBytes(r: NewAuditRecord): Buffer {
  const record = stamped(r);
  const json = flatJsonBytes(record);
  if (json === null) return Buffer.from(JSON.stringify(record), 'utf8');
  const doc = Buffer.allocUnsafe(json.length);
  json.buf.copy(doc, 0, 0, json.length);
  return doc;
}

interface AuditRow {
  seq: number;
  doc: string;
}

/** Index rows per batch when the writer drives the indexer: big enough to amortise index pages. */
export const DEFAULT_INDEX_BATCH = 256;
/**
 * Records waiting in the journal (and in memory) beyond which an append is refused: bounds the
 * memory they hold and the journal while the database refuses writes or cannot keep up. Never
 * ingested all at once here: that would hold the main thread for seconds. The daemon refuses new
 * requests well before this (AuditWriter.backlogged), so it is reached only by decisions already
 * under way.
 */
export const MAX_UNINGESTED = 65_536;

/** An append refused because too many records wait to be ingested: retryable once ingestion caught up. */
export class AuditBacklogError extends Error {
  override readonly name = 'AuditBacklogError';
}

export interface AuditStoreOptions {
  /** The opened journal: one file with durability 'normal'; two segments synced on the thread pool with 'full'. */
  journal: AuditJournal | SyncedAuditJournal;
  /** The valid frames the journal held at open. */
  recovered: readonly JournalFrame[];
  /** Bytes of a torn or bad tail the journal cut off at open. */
  droppedBytes?: number;
  /** Journal size beyond which it is emptied once fully ingested (default 4 MiB). */
  journalTruncateBytes?: number;
  /** Records waiting to be ingested beyond which an append is refused (default MAX_UNINGESTED). */
  maxUningested?: number;
}

/** What the store found at open. */
export interface AuditRecovery {
  /** Journal records not yet in audit_log at open (a kill -9 left them), ingested since. */
  ingested: number;
  /** Bytes of a torn tail cut off the journal: a batch whose write never returned (never acknowledged). */
  droppedBytes: number;
}

export class AuditStore {
  private readonly indexer: AuditIndexer;
  private readonly ingester: AuditIngester;
  private readonly journal: AuditJournal | SyncedAuditJournal;
  /** Durability 'full': the journal whose records are acknowledged once synced. */
  private readonly synced: SyncedAuditJournal | null;
  /** 'full': written to the journal, not yet synced, so neither acknowledged nor ingested (seq order). */
  private unsynced: JournalFrame[] = [];
  private unsyncedRows: AuditIndexRow[] = [];
  private readonly maxUningested: number;
  private readonly stmts;
  // Allocated here, not by SQLite: this connection is the only writer of the audit log.
  private nextSeq: number;
  readonly recovery: AuditRecovery;

  constructor(
    private readonly db: Database.Database,
    options: AuditStoreOptions,
  ) {
    this.indexer = new AuditIndexer(db);
    this.journal = options.journal;
    this.synced = options.journal instanceof SyncedAuditJournal ? options.journal : null;
    this.maxUningested = options.maxUningested ?? MAX_UNINGESTED;
    this.ingester = new AuditIngester(db, options.journal, options.journalTruncateBytes);
    this.stmts = {
      top: db.prepare<[], number | null>('SELECT max(seq) FROM audit_log').pluck(),
      get: db.prepare<[string], AuditRow>(
        'SELECT l.seq, l.doc FROM audit_index i JOIN audit_log l ON l.seq = i.seq WHERE i.decision_id = ? ORDER BY i.seq LIMIT 1',
      ),
      count: db.prepare<[], number>('SELECT count(*) FROM audit_index').pluck(),
      deleteOlder: {
        log: db.prepare<[number]>('DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_index WHERE time < ?)'),
        index: db.prepare<[number]>('DELETE FROM audit_index WHERE time < ?'),
      },
      deleteThrough: {
        log: db.prepare<[number]>('DELETE FROM audit_log WHERE seq <= ?'),
        index: db.prepare<[number]>('DELETE FROM audit_index WHERE seq <= ?'),
      },
      cutForCount: db
        .prepare<[number], number>('SELECT seq FROM audit_index ORDER BY seq DESC LIMIT 1 OFFSET ?')
        .pluck(),
    };
    // Whatever a crash left in the journal, then unindexed. The journal is then empty: every
    // frame in it is at or below the ingester's mark.
    this.recovery = { ingested: this.ingester.recover(options.recovered), droppedBytes: options.droppedBytes ?? 0 };
    this.relaxed(() => {
      this.ingester.ingestAll();
      this.ingester.truncateIfDone();
      this.indexer.catchUp();
    });
    // One above every seq ever handed out, so that a seq freed by retention (or cut from the
    // journal once ingested) is never handed out again.
    const journalTop = options.recovered.at(-1)?.seq ?? 0;
    this.nextSeq =
      1 +
      Math.max(this.stmts.top.get() ?? 0, this.indexer.indexedThrough(), this.ingester.ingestedThrough(), journalTop);
  }

  /**
   * Commits all records (all or none) and returns their seqs: one write of the batch to the
   * journal. Durability 'full': acknowledged only once sync() has succeeded. The log and the index follow later:
   * through ingestSome() and indexSome() (the audit writer calls them off the answer path), or before any read.
   * decisionId is not checked for uniqueness here (it costs an index page per record, and the
   * daemon makes time-ordered random ids, UUIDv7): a duplicate is kept like any record, since the
   * audit never drops one, and get() returns the first.
   */
  append(records: readonly NewAuditRecord[]): number[] {
    if (records.length === 0) return [];
    // Everything about the records that can fail fails before anything is written. (Loops, not
    // map(): a commit of one record is every lone VM's, and each map's callback is an object.)
    const n = records.length;
    const rows = new Array<AuditIndexRow>(n);
    const frames = new Array<JournalFrame>(n);
    for (let k = 0; k < n; k++) rows[k] = indexRowOf(0, records[k]!);
    for (let k = 0; k < n; k++) frames[k] = { seq: this.nextSeq + k, doc: auditDocBytes(records[k]!) };
    const waiting = this.ingester.pendingCount + this.unsynced.length;
    if (waiting + frames.length > this.maxUningested)
      throw new AuditBacklogError(
        `${waiting} audit records wait to be moved from the journal into the database (at most ${this.maxUningested}): it is not keeping up or refuses writes; retry later`,
      );
    this.journal.append(frames);
    // Only a batch written whole consumes its seqs (and one whose sync fails gives them back).
    this.nextSeq += frames.length;
    for (let k = 0; k < rows.length; k++) rows[k]!.seq = frames[k]!.seq;
    if (this.synced !== null) {
      for (const f of frames) this.unsynced.push(f);
      for (const r of rows) this.unsyncedRows.push(r);
    } else {
      this.ingester.add(frames);
      this.indexer.feed(rows);
    }
    const seqs = new Array<number>(n);
    for (let k = 0; k < n; k++) seqs[k] = frames[k]!.seq;
    return seqs;
  }

  /** Durability 'full': appended records are acknowledged only once sync() succeeded. */
  get syncsJournal(): boolean {
    return this.synced !== null;
  }

  /** 'full': records appended and not yet synced. */
  get unsyncedCount(): number {
    return this.unsynced.length;
  }

  /** 'full': an fdatasync of the journal is under way. */
  get syncing(): boolean {
    return this.synced?.syncing ?? false;
  }

  /**
   * Makes every record appended before the call durable: with durability 'full' an fdatasync of
   * the journal on the thread pool, after which they are acknowledged and ingested; `done(null)`
   * then. On failure every record not yet synced (appended before the call or since) is dropped
   * from the journal and its seq given back, and `done(err)` runs in the same turn, before
   * anything else can append: their writers must report an audit failure. One at a time.
   * 'normal', or nothing to sync: `done(null)` at once.
   */
  sync(done: (err: Error | null) => void): void {
    const journal = this.synced;
    const count = this.unsynced.length;
    if (journal === null || count === 0) return done(null);
    journal.sync((err) => {
      if (err !== null) {
        this.nextSeq -= this.unsynced.length;
        this.unsynced = [];
        this.unsyncedRows = [];
        return done(err);
      }
      const frames = this.unsynced.splice(0, count);
      this.ingester.add(frames);
      this.indexer.feed(this.unsyncedRows.splice(0, count));
      done(null);
    });
  }

  /** sync() as a promise (start-up, tests). */
  syncNow(): Promise<void> {
    return new Promise((resolve, reject) => this.sync((err) => (err === null ? resolve() : reject(err))));
  }

  /**
   * Runs the store's own transactions with synchronous=NORMAL when the connection is FULL
   * (durability 'full'): no fsync on the calling thread. The records' durability is the
   * journal's, which keeps them until the WAL is synced on the thread pool (audit-journal-synced.ts).
   */
  private relaxed<T>(work: () => T): T {
    if (this.synced === null) return work();
    // Not prepared once: SQLite applies this pragma when it is prepared, so a prepared
    // `synchronous = FULL` would set it on the connection of either durability.
    this.db.pragma('synchronous = NORMAL');
    try {
      return work();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /** Records appended on this connection and not yet indexed (in the journal or in audit_log). */
  get unindexed(): number {
    return Math.max(this.indexer.fedPending, this.ingester.pendingCount);
  }

  /** Records acknowledged (in the journal) and not yet ingested into audit_log. */
  get uningested(): number {
    return this.ingester.pendingCount;
  }

  /** Ingests up to `maxRows` of the oldest journal records into audit_log, in one transaction; returns how many. */
  ingestSome(maxRows: number): number {
    return this.relaxed(() => this.ingester.ingest(maxRows));
  }

  /** Indexes up to `maxRows` of the oldest unindexed records of audit_log, in one transaction; returns how many. */
  indexSome(maxRows: number): number {
    return this.relaxed(() => this.indexer.indexPending(maxRows));
  }

  /** Moves every acknowledged record into audit_log, without indexing (reads do both by themselves). */
  ingestAll(): void {
    this.relaxed(() => this.ingester.ingestAll());
  }

  /** Ingests and indexes every acknowledged record now (reads do this by themselves). */
  indexAll(): void {
    this.relaxed(() => {
      this.ingester.ingestAll();
      this.indexer.catchUp();
    });
  }

  /** Derives the index again from the records' JSON (repair). */
  rebuildIndex(): void {
    this.relaxed(() => {
      this.ingester.ingestAll();
      this.indexer.rebuild();
    });
  }

  /**
   * Closes the journal (Store.close). 'normal': emptied first if everything in it is ingested.
   * 'full': emptied only when `databaseDurable` (a checkpoint copied the whole log back into the
   * database file and synced it) and every record in it is synced and ingested; else the next
   * open recovers it (skipping what is already in the database).
   */
  close(databaseDurable = false): void {
    try {
      if (this.synced === null) this.ingester.truncateIfDone();
      else if (databaseDurable && this.unsynced.length === 0 && this.ingester.pendingCount === 0)
        this.synced.emptyAll();
    } finally {
      this.journal.close();
    }
  }

  /** Closes the journal as a killed process would, leaving it as it is (Store.abandon). */
  abandon(): void {
    this.journal.close();
  }

  get(decisionId: string): AuditRecord | null {
    this.indexAll();
    const row = this.stmts.get.get(decisionId);
    return row ? toRecord(row) : null;
  }

  /** Returns up to `limit` records and whether more match. */
  query(f: AuditFilter): { records: AuditRecord[]; more: boolean } {
    this.indexAll();
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (f.sinceMs !== undefined) where.push('i.time >= ?'), args.push(f.sinceMs);
    if (f.untilMs !== undefined) where.push('i.time < ?'), args.push(f.untilMs);
    if (f.vm !== undefined) where.push('(i.vm_uuid = ? OR i.vm_name = ?)'), args.push(f.vm, f.vm);
    if (f.decision !== undefined) where.push('i.decision = ?'), args.push(f.decision);
    if (f.policy !== undefined) where.push('i.policy = ?'), args.push(f.policy);
    if (f.afterSeq !== undefined) where.push(f.order === 'asc' ? 'i.seq > ?' : 'i.seq < ?'), args.push(f.afterSeq);
    const sql = `SELECT l.seq, l.doc FROM audit_index i JOIN audit_log l ON l.seq = i.seq ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY i.seq ${f.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
    const rows = this.db.prepare<Array<string | number>, AuditRow>(sql).all(...args, f.limit + 1);
    return { records: rows.slice(0, f.limit).map(toRecord), more: rows.length > f.limit };
  }

  count(): number {
    this.indexAll();
    return this.stmts.count.get()!;
  }

  /** Applies the retention rule; returns how many records were deleted. */
  prune(rule: RetentionRule, now = Date.now()): number {
    // Ingested and indexed first, so every record is found by time, and the high-water marks
    // cover every seq deleted here.
    this.indexAll();
    return this.relaxed(() => this.pruneNow(rule, now));
  }

  private pruneNow(rule: RetentionRule, now: number): number {
    return this.db
      .transaction(() => {
        let deleted = 0;
        if (rule.maxAgeMs !== undefined) {
          deleted += this.stmts.deleteOlder.log.run(now - rule.maxAgeMs).changes;
          this.stmts.deleteOlder.index.run(now - rule.maxAgeMs);
        }
        if (rule.maxRecords !== undefined) {
          const cut = this.stmts.cutForCount.get(rule.maxRecords);
          if (cut !== undefined) {
            deleted += this.stmts.deleteThrough.log.run(cut).changes;
            this.stmts.deleteThrough.index.run(cut);
          }
        }
        return deleted;
      })
      .immediate();
  }
}

function toRecord(row: AuditRow): AuditRecord {
  const doc = JSON.parse(row.doc) as NewAuditRecord & { schemaVersion?: number };
  // Rows written before records carried a version have the shape of version 1.
  return { ...doc, schemaVersion: doc.schemaVersion ?? 1, seq: row.seq };
}
