// The audit log: one row per decision. Filterable fields are columns; the full record is JSON.
import type Database from 'better-sqlite3';
import type { AuditRecord } from '../wire/index.ts';

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

export class AuditStore {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly insertMany;

  constructor(private readonly db: Database.Database) {
    this.insertStmt = db.prepare('INSERT INTO audit (decision_id, time, vm_uuid, vm_name, policy, decision, doc) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.getStmt = db.prepare<[string], AuditRow>('SELECT seq, doc FROM audit WHERE decision_id = ?');
    // One transaction per batch: the group commit of the audit writer.
    this.insertMany = db.transaction((records: readonly NewAuditRecord[]) => {
      for (const r of records) {
        this.insertStmt.run(r.decisionId, Date.parse(r.time), r.vm?.uuid ?? null, r.vm?.name ?? null, r.policy?.name ?? null, r.decision, JSON.stringify(r));
      }
    });
  }

  /** Commits all records in one transaction (all or none). */
  append(records: readonly NewAuditRecord[]): void {
    if (records.length > 0) this.insertMany(records);
  }

  get(decisionId: string): AuditRecord | null {
    const row = this.getStmt.get(decisionId);
    return row ? toRecord(row) : null;
  }

  /** Returns up to `limit` records and whether more match. */
  query(f: AuditFilter): { records: AuditRecord[]; more: boolean } {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (f.sinceMs !== undefined) (where.push('time >= ?'), args.push(f.sinceMs));
    if (f.untilMs !== undefined) (where.push('time < ?'), args.push(f.untilMs));
    if (f.vm !== undefined) (where.push('(vm_uuid = ? OR vm_name = ?)'), args.push(f.vm, f.vm));
    if (f.decision !== undefined) (where.push('decision = ?'), args.push(f.decision));
    if (f.policy !== undefined) (where.push('policy = ?'), args.push(f.policy));
    if (f.afterSeq !== undefined) (where.push(f.order === 'asc' ? 'seq > ?' : 'seq < ?'), args.push(f.afterSeq));
    const sql = `SELECT seq, doc FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${f.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
    const rows = this.db.prepare<Array<string | number>, AuditRow>(sql).all(...args, f.limit + 1);
    return { records: rows.slice(0, f.limit).map(toRecord), more: rows.length > f.limit };
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
  }

  /** Applies the retention rule; returns how many records were deleted. */
  prune(rule: RetentionRule, now = Date.now()): number {
    let deleted = 0;
    if (rule.maxAgeMs !== undefined) deleted += this.db.prepare('DELETE FROM audit WHERE time < ?').run(now - rule.maxAgeMs).changes;
    if (rule.maxRecords !== undefined) {
      const cut = this.db.prepare('SELECT seq FROM audit ORDER BY seq DESC LIMIT 1 OFFSET ?').get(rule.maxRecords) as { seq: number } | undefined;
      if (cut) deleted += this.db.prepare('DELETE FROM audit WHERE seq <= ?').run(cut.seq).changes;
    }
    return deleted;
  }
}

function toRecord(row: AuditRow): AuditRecord {
  return { seq: row.seq, ...(JSON.parse(row.doc) as NewAuditRecord) };
}
