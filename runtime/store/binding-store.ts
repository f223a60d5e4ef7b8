// Bindings of revisions to operations, with a history that rollback walks back like a stack:
// the live entries (not rolled back) in id order; the current binding is the top one.
import type Database from 'better-sqlite3';
import type { Operation } from '../contract/types.ts';
import type { Binding, BindingHistoryEntry, BindingSource } from '../wire/index.ts';

interface BindingRow {
  operation: Operation;
  policy: string;
  revision: number;
  sha256: string;
  bound_at: number;
  source: BindingSource;
  key_id: string | null;
}

const CURRENT =
  'SELECT b.operation, b.policy, b.revision, r.sha256, b.bound_at, b.source, r.key_id FROM bindings b JOIN policy_revisions r ON r.policy = b.policy AND r.revision = b.revision';

interface HistoryRow {
  id: number;
  operation: Operation;
  action: 'bind' | 'unbind';
  policy: string | null;
  revision: number | null;
  sha256: string | null;
  at: number;
  rolled_back_at: number | null;
}

export type BindResult =
  | { ok: true; binding: Binding | null; previous: Binding | null }
  | { ok: false; reason: 'revision-not-found' | 'nothing-to-roll-back' | 'revision-deleted'; message: string };

export class BindingStore {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      current: db.prepare<[], BindingRow>(`${CURRENT} ORDER BY b.operation`),
      currentOne: db.prepare<[string], BindingRow>(`${CURRENT} WHERE b.operation = ?`),
      sha: db.prepare<[string, number], { sha256: string }>(
        'SELECT sha256 FROM policy_revisions WHERE policy = ? AND revision = ?',
      ),
      upsert: db.prepare(
        'INSERT INTO bindings (operation, policy, revision, bound_at, source) VALUES (?, ?, ?, ?, ?) ON CONFLICT(operation) DO UPDATE SET policy = excluded.policy, revision = excluded.revision, bound_at = excluded.bound_at, source = excluded.source',
      ),
      remove: db.prepare('DELETE FROM bindings WHERE operation = ?'),
      pushHistory: db.prepare(
        'INSERT INTO binding_history (operation, action, policy, revision, sha256, at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      liveHistory: db.prepare<[string], HistoryRow>(
        'SELECT * FROM binding_history WHERE operation = ? AND rolled_back_at IS NULL ORDER BY id DESC LIMIT 2',
      ),
      markRolledBack: db.prepare('UPDATE binding_history SET rolled_back_at = ? WHERE id = ?'),
      history: db.prepare<[string, number], HistoryRow>(
        'SELECT * FROM binding_history WHERE operation = ? ORDER BY id DESC LIMIT ?',
      ),
    };
  }

  current(): Binding[] {
    return this.stmts.current.all().map(toBinding);
  }

  currentFor(operation: Operation): Binding | null {
    const row = this.stmts.currentOne.get(operation);
    return row ? toBinding(row) : null;
  }

  bind(
    operation: Operation,
    policy: string,
    revision: number,
    now = Date.now(),
    source: BindingSource = 'admin',
  ): BindResult {
    return this.db
      .transaction((): BindResult => {
        const rev = this.stmts.sha.get(policy, revision);
        if (!rev)
          return { ok: false, reason: 'revision-not-found', message: `policy ${policy} has no revision ${revision}` };
        const previous = this.currentFor(operation);
        this.stmts.upsert.run(operation, policy, revision, now, source);
        this.stmts.pushHistory.run(operation, 'bind', policy, revision, rev.sha256, now);
        return { ok: true, binding: this.currentFor(operation), previous };
      })
      .immediate();
  }

  unbind(operation: Operation, now = Date.now()): BindResult {
    return this.db
      .transaction((): BindResult => {
        const previous = this.currentFor(operation);
        if (previous === null) return { ok: true, binding: null, previous: null };
        this.stmts.remove.run(operation);
        this.stmts.pushHistory.run(operation, 'unbind', null, null, null, now);
        return { ok: true, binding: null, previous };
      })
      .immediate();
  }

  /** Undoes the latest live history entry and restores the one before it. */
  rollback(operation: Operation, now = Date.now()): BindResult {
    return this.db
      .transaction((): BindResult => {
        const [top, below] = this.stmts.liveHistory.all(operation);
        if (!top || !below)
          return {
            ok: false,
            reason: 'nothing-to-roll-back',
            message: `${operation} has no earlier binding to roll back to`,
          };
        const previous = this.currentFor(operation);
        if (below.action === 'unbind') {
          this.stmts.remove.run(operation);
        } else {
          if (!this.stmts.sha.get(below.policy!, below.revision!)) {
            return {
              ok: false,
              reason: 'revision-deleted',
              message: `the earlier binding, ${below.policy} revision ${below.revision}, was deleted`,
            };
          }
          this.stmts.upsert.run(operation, below.policy, below.revision, now, 'admin');
        }
        this.stmts.markRolledBack.run(now, top.id);
        return { ok: true, binding: this.currentFor(operation), previous };
      })
      .immediate();
  }

  history(operation: Operation, limit = 100): BindingHistoryEntry[] {
    return this.stmts.history.all(operation, limit).map((r) => ({
      id: r.id,
      operation: r.operation,
      action: r.action,
      binding:
        r.action === 'bind' && r.policy !== null && r.revision !== null
          ? {
              operation: r.operation,
              policy: r.policy,
              revision: r.revision,
              sha256: r.sha256 ?? '',
              boundAt: new Date(r.at).toISOString(),
              source: 'admin' as const,
            }
          : null,
      at: new Date(r.at).toISOString(),
      ...(r.rolled_back_at !== null ? { rolledBackAt: new Date(r.rolled_back_at).toISOString() } : {}),
    }));
  }
}

function toBinding(row: BindingRow): Binding {
  return {
    operation: row.operation,
    policy: row.policy,
    revision: row.revision,
    sha256: row.sha256,
    boundAt: new Date(row.bound_at).toISOString(),
    source: row.source,
    ...(row.key_id !== null ? { keyId: row.key_id } : {}),
  };
}
