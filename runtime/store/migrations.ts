// Versioned schema migrations. PRAGMA user_version holds the applied version; each migration
// runs in its own transaction together with the version bump, so a crash leaves the previous
// version intact and the next start re-runs it.
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'policies, revisions, bindings with history, VMs, audit',
    sql: `
      CREATE TABLE policies (
        name TEXT PRIMARY KEY,
        next_revision INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE policy_revisions (
        policy TEXT NOT NULL REFERENCES policies(name),
        revision INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        description TEXT NOT NULL,
        bytes BLOB NOT NULL,
        info TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (policy, revision)
      );
      CREATE TABLE bindings (
        operation TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        revision INTEGER NOT NULL,
        bound_at INTEGER NOT NULL,
        FOREIGN KEY (policy, revision) REFERENCES policy_revisions(policy, revision)
      );
      CREATE TABLE binding_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        operation TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('bind', 'unbind')),
        policy TEXT,
        revision INTEGER,
        sha256 TEXT,
        at INTEGER NOT NULL,
        rolled_back_at INTEGER
      );
      CREATE INDEX binding_history_op ON binding_history(operation, id);
      CREATE TABLE vms (
        uuid TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        doc TEXT NOT NULL,
        registered_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        decision_id TEXT NOT NULL UNIQUE,
        time INTEGER NOT NULL,
        vm_uuid TEXT,
        vm_name TEXT,
        policy TEXT,
        decision TEXT NOT NULL,
        doc TEXT NOT NULL
      );
      CREATE INDEX audit_time ON audit(time);
      CREATE INDEX audit_vm_uuid ON audit(vm_uuid, seq);
      CREATE INDEX audit_vm_name ON audit(vm_name, seq);
      CREATE INDEX audit_policy ON audit(policy, seq);
    `,
  },
];

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/** Applies every migration newer than the database's user_version. Returns the final version. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.reduce((m, x) => Math.max(m, x.version), 0);
  if (current > latest) {
    throw new MigrationError(`the database schema is version ${current}, newer than this capgate knows (${latest}): upgrade capgate or use another state directory`);
  }
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return Math.max(current, latest);
}
