// The audit log: one row per decision, the full record as JSON, appended on the decision path.
// Queries go through the derived index (audit-indexer.ts), brought up to date before each read.
import type Database from 'better-sqlite3';
import type { AuditRecord } from '../wire/index.ts';
import { AuditIndexer, indexRowOf, type AuditIndexRow } from './audit-indexer.ts';

export type NewAuditRecord = Omit<AuditRecord, 'seq'>;

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

interface AuditRow {
  seq: number;
  doc: string;
}

/** Index rows per batch when the writer drives the indexer: big enough to amortise index pages. */
export const DEFAULT_INDEX_BATCH = 256;

export class AuditStore {
  private readonly indexer: AuditIndexer;
  private readonly stmts;
  private readonly appendMany;

  constructor(private readonly db: Database.Database) {
    this.indexer = new AuditIndexer(db);
    this.stmts = {
      // seq: one above both the newest record and the high-water mark, so that a seq freed by
      // retention is never handed out again (what AUTOINCREMENT did, without its extra page write).
      append: db.prepare<[string]>(
        'INSERT INTO audit_log (seq, doc) SELECT max(coalesce((SELECT max(seq) FROM audit_log), 0), indexed_through) + 1, ? FROM audit_indexer WHERE id = 1',
      ),
      get: db.prepare<[string], AuditRow>('SELECT l.seq, l.doc FROM audit_index i JOIN audit_log l ON l.seq = i.seq WHERE i.decision_id = ? ORDER BY i.seq LIMIT 1'),
      count: db.prepare<[], number>('SELECT count(*) FROM audit_index').pluck(),
      deleteOlder: {
        log: db.prepare<[number]>('DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_index WHERE time < ?)'),
        index: db.prepare<[number]>('DELETE FROM audit_index WHERE time < ?'),
      },
      deleteThrough: {
        log: db.prepare<[number]>('DELETE FROM audit_log WHERE seq <= ?'),
        index: db.prepare<[number]>('DELETE FROM audit_index WHERE seq <= ?'),
      },
      cutForCount: db.prepare<[number], number>('SELECT seq FROM audit_index ORDER BY seq DESC LIMIT 1 OFFSET ?').pluck(),
    };
    // One transaction per batch: the group commit of the audit writer. Only the log is written.
    this.appendMany = db.transaction((records: readonly NewAuditRecord[]): AuditIndexRow[] => {
      const rows: AuditIndexRow[] = [];
      for (const r of records) {
        const row = indexRowOf(0, r);
        row.seq = Number(this.stmts.append.run(JSON.stringify(r)).lastInsertRowid);
        rows.push(row);
      }
      return rows;
    });
    // Whatever a crash left unindexed.
    this.indexer.catchUp();
  }

  /**
   * Commits all records in one transaction (all or none). The index follows later: through
   * indexPending() (the audit writer calls it when idle), or before any read.
   * decisionId is not checked for uniqueness here (it costs an index page per record, and the
   * daemon makes time-ordered random ids, UUIDv7): a duplicate is kept like any record, since the
   * audit never drops one, and get() returns the first.
   */
  append(records: readonly NewAuditRecord[]): void {
    if (records.length > 0) this.indexer.feed(this.appendMany(records));
  }

  /** Records appended on this connection and not yet indexed. */
  get unindexed(): number {
    return this.indexer.fedPending;
  }

  /** Indexes up to `maxRows` pending records in one transaction; returns how many. */
  indexPending(maxRows = DEFAULT_INDEX_BATCH): number {
    return this.indexer.indexPending(maxRows);
  }

  /** Indexes every committed record now (reads do this by themselves). */
  indexAll(): void {
    this.indexer.catchUp();
  }

  /** Derives the index again from the records' JSON (repair). */
  rebuildIndex(): void {
    this.indexer.rebuild();
  }

  get(decisionId: string): AuditRecord | null {
    this.indexer.catchUp();
    const row = this.stmts.get.get(decisionId);
    return row ? toRecord(row) : null;
  }

  /** Returns up to `limit` records and whether more match. */
  query(f: AuditFilter): { records: AuditRecord[]; more: boolean } {
    this.indexer.catchUp();
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (f.sinceMs !== undefined) (where.push('i.time >= ?'), args.push(f.sinceMs));
    if (f.untilMs !== undefined) (where.push('i.time < ?'), args.push(f.untilMs));
    if (f.vm !== undefined) (where.push('(i.vm_uuid = ? OR i.vm_name = ?)'), args.push(f.vm, f.vm));
    if (f.decision !== undefined) (where.push('i.decision = ?'), args.push(f.decision));
    if (f.policy !== undefined) (where.push('i.policy = ?'), args.push(f.policy));
    if (f.afterSeq !== undefined) (where.push(f.order === 'asc' ? 'i.seq > ?' : 'i.seq < ?'), args.push(f.afterSeq));
    const sql = `SELECT l.seq, l.doc FROM audit_index i JOIN audit_log l ON l.seq = i.seq ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY i.seq ${f.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
    const rows = this.db.prepare<Array<string | number>, AuditRow>(sql).all(...args, f.limit + 1);
    return { records: rows.slice(0, f.limit).map(toRecord), more: rows.length > f.limit };
  }

  count(): number {
    this.indexer.catchUp();
    return this.stmts.count.get()!;
  }

  /** Applies the retention rule; returns how many records were deleted. */
  prune(rule: RetentionRule, now = Date.now()): number {
    // Indexed first, so every record is found by time, and the high-water mark covers every
    // seq deleted here.
    this.indexer.catchUp();
    return this.db.transaction(() => {
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
    })();
  }
}

function toRecord(row: AuditRow): AuditRecord {
  return { seq: row.seq, ...(JSON.parse(row.doc) as NewAuditRecord) };
}
