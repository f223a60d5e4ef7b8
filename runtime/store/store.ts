// The daemon's state: one SQLite database, one store object per table group.
import type Database from 'better-sqlite3';
import { openDatabase, type Durability } from './database.ts';
import { PolicyStore } from './policy-store.ts';
import { BindingStore } from './binding-store.ts';
import { VmStore } from './vm-store.ts';
import { AuditStore } from './audit-store.ts';

export class Store {
  readonly policies: PolicyStore;
  readonly bindings: BindingStore;
  readonly vms: VmStore;
  readonly audit: AuditStore;

  private constructor(readonly db: Database.Database) {
    this.policies = new PolicyStore(db);
    this.bindings = new BindingStore(db);
    this.vms = new VmStore(db);
    this.audit = new AuditStore(db);
  }

  static open(file: string, durability: Durability = 'normal'): Store {
    return new Store(openDatabase(file, durability));
  }

  /** PRAGMA integrity_check; "ok" when the file is sound. */
  integrityCheck(): string {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }

  close(): void {
    if (!this.db.open) return;
    try {
      // A clean stop leaves the index complete: the next start has nothing to catch up.
      this.audit.indexAll();
    } finally {
      // Fold the WAL back so the file on disk is self-contained after a clean stop.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    }
  }
}

export type { Durability } from './database.ts';
export type { StoredPolicyInfo, NewRevision, DeleteRevisionResult } from './policy-store.ts';
export type { BindResult } from './binding-store.ts';
export type { VmWriteResult } from './vm-store.ts';
export type { NewAuditRecord, AuditFilter, RetentionRule } from './audit-store.ts';
