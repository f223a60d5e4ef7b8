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
  {
    version: 2,
    description: 'audit split into an append-only log (the hot path) and a derived index filled in batches',
    // audit_log is all a decision commits: its rowid B-tree, one page per commit. The query
    // columns and their five indexes (one page each per row) move to audit_index, which
    // runtime/store/audit-indexer.ts derives from the log in batches. audit_indexer.indexed_through
    // says how far; it is also seq's high-water mark (never lowered, see AuditStore), which keeps
    // seq from being reused without AUTOINCREMENT: v1's AUTOINCREMENT counter carries over.
    // The view \`audit\` keeps v1's columns for people and tools that read the file directly.
    sql: `
      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        doc TEXT NOT NULL
      );
      CREATE TABLE audit_index (
        seq INTEGER PRIMARY KEY,
        decision_id TEXT NOT NULL,
        time INTEGER NOT NULL,
        vm_uuid TEXT,
        vm_name TEXT,
        policy TEXT,
        decision TEXT NOT NULL
      );
      CREATE TABLE audit_indexer (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_through INTEGER NOT NULL
      );
      INSERT INTO audit_log (seq, doc) SELECT seq, doc FROM audit;
      INSERT INTO audit_index (seq, decision_id, time, vm_uuid, vm_name, policy, decision)
        SELECT seq, decision_id, time, vm_uuid, vm_name, policy, decision FROM audit;
      INSERT INTO audit_indexer (id, indexed_through) VALUES (1, max(
        (SELECT coalesce(max(seq), 0) FROM audit),
        (SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'audit')));
      DROP TABLE audit;
      CREATE INDEX audit_index_decision_id ON audit_index(decision_id);
      CREATE INDEX audit_index_time ON audit_index(time);
      CREATE INDEX audit_index_vm_uuid ON audit_index(vm_uuid, seq);
      CREATE INDEX audit_index_vm_name ON audit_index(vm_name, seq);
      CREATE INDEX audit_index_policy ON audit_index(policy, seq);
      CREATE VIEW audit AS SELECT
        seq,
        json_extract(doc, '$.decisionId') AS decision_id,
        CAST(round(unixepoch(json_extract(doc, '$.time'), 'subsec') * 1000) AS INTEGER) AS time,
        json_extract(doc, '$.vm.uuid') AS vm_uuid,
        json_extract(doc, '$.vm.name') AS vm_name,
        json_extract(doc, '$.policy.name') AS policy,
        json_extract(doc, '$.decision') AS decision,
        doc
      FROM audit_log;
    `,
  },
  {
    version: 3,
    description: 'audit journal: how far its records are ingested into audit_log',
    // With durability 'normal' a decision's record is first written to the audit journal beside
    // the database (runtime/store/audit-journal.ts) and moved into audit_log in batches; each
    // batch commits audit_ingester.ingested_through with its rows, so recovery ingests exactly
    // the journal's frames above it. Never lowered: it is also a high-water mark of seq.
    sql: `
      CREATE TABLE audit_ingester (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        ingested_through INTEGER NOT NULL
      );
      INSERT INTO audit_ingester (id, ingested_through)
        SELECT 1, max(coalesce((SELECT max(seq) FROM audit_log), 0), indexed_through) FROM audit_indexer WHERE id = 1;
    `,
  },
  {
    version: 4,
    description:
      'signed revisions (minisign signature, key id, signer) and where a binding comes from (admin socket or policy directory)',
    // The signature file is kept whole so that every start checks it again against the trust
    // roots of that day, and so that \`capgate policy bundle\` can ship it with the bytes.
    sql: `
      ALTER TABLE policy_revisions ADD COLUMN signature_file TEXT;
      ALTER TABLE policy_revisions ADD COLUMN key_id TEXT;
      ALTER TABLE policy_revisions ADD COLUMN signer TEXT;
      ALTER TABLE policy_revisions ADD COLUMN trusted_comment TEXT;
      ALTER TABLE bindings ADD COLUMN source TEXT NOT NULL DEFAULT 'admin' CHECK (source IN ('admin', 'directory'));
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
    throw new MigrationError(
      `the database schema is version ${current}, newer than this capgate knows (${latest}): upgrade capgate or use another state directory`,
    );
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
