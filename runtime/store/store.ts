// The daemon's state: one SQLite database, one store object per table group.
// Files in the state directory: the database (`capgate.db`), SQLite's `-wal` and `-shm` beside
// it, and `capgate.db-audit-journal` (mode 0600): audit records acknowledged and not yet moved
// into the database (runtime/store/audit-journal.ts); with durability 'full' also
// `capgate.db-audit-journal-b`, its second segment (audit-journal-synced.ts). Whoever reads the
// database file directly sees a record once it is ingested: within ~20 ms of a quiet moment or
// 256 records in a running daemon, at the next start after a kill -9, always after a clean stop
// (which leaves the journal empty).
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { openDatabase, type Durability } from './database.ts';
import { lockState, type StateLock } from './state-lock.ts';
import { AuditJournal, decodeFrames, journalFileOf, type JournalFrame, type JournalIo } from './audit-journal.ts';
import { secondJournalFileOf, SyncedAuditJournal } from './audit-journal-synced.ts';
import { DEFAULT_JOURNAL_TRUNCATE_BYTES } from './audit-ingester.ts';
import { PolicyStore } from './policy-store.ts';
import { BindingStore } from './binding-store.ts';
import { VmStore } from './vm-store.ts';
import { AuditStore, type AuditStoreOptions } from './audit-store.ts';

export interface StoreOptions {
  /** Audit journal size beyond which it is emptied once fully ingested (default 4 MiB). */
  journalTruncateBytes?: number;
  /** The journal's write, truncate and syncs (a seam for tests: short writes, a full disk, a failed fdatasync). */
  journalIo?: Partial<JournalIo>;
  /** Durability 'full': a WAL sync that would let a journal segment be emptied failed (it is retried). */
  onJournalRetireError?(err: Error): void;
  /** Records waiting to be ingested beyond which an append is refused (default 65,536). */
  maxUningested?: number;
}

export class Store {
  readonly policies: PolicyStore;
  readonly bindings: BindingStore;
  readonly vms: VmStore;
  readonly audit: AuditStore;

  private constructor(
    readonly db: Database.Database,
    audit: AuditStoreOptions,
    private readonly lock: StateLock,
  ) {
    this.policies = new PolicyStore(db);
    this.bindings = new BindingStore(db);
    this.vms = new VmStore(db);
    this.audit = new AuditStore(db, audit);
  }

  /** Throws StateLockedError when another daemon holds the state (state-lock.ts). */
  static open(file: string, durability: Durability = 'normal', options: StoreOptions = {}): Store {
    const lock = lockState(file);
    try {
      return Store.openLocked(file, durability, options, lock);
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  private static openLocked(file: string, durability: Durability, options: StoreOptions, lock: StateLock): Store {
    const db = openDatabase(file, durability);
    const journalFile = journalFileOf(file);
    const tuning = {
      ...(options.journalTruncateBytes !== undefined ? { journalTruncateBytes: options.journalTruncateBytes } : {}),
      ...(options.maxUningested !== undefined ? { maxUningested: options.maxUningested } : {}),
    };
    try {
      if (durability === 'full') {
        const { journal, frames, droppedBytes } = SyncedAuditJournal.open(file, journalFile, {
          ...(options.journalIo !== undefined ? { io: options.journalIo } : {}),
          rotateAboveBytes: options.journalTruncateBytes ?? DEFAULT_JOURNAL_TRUNCATE_BYTES,
          ...(options.onJournalRetireError !== undefined ? { onRetireError: options.onJournalRetireError } : {}),
        });
        try {
          return new Store(db, { journal, recovered: frames, droppedBytes, ...tuning }, lock);
        } catch (err) {
          journal.close();
          throw err;
        }
      }
      // 'normal' has one segment: a second one a 'full' run left is recovered with it, then removed.
      const second = secondJournalFileOf(journalFile);
      const left: JournalFrame[] = fs.existsSync(second) ? decodeFrames(fs.readFileSync(second)).frames : [];
      const { journal, frames, droppedBytes } = AuditJournal.open(journalFile, options.journalIo);
      try {
        const recovered = left.length > 0 ? [...frames, ...left].sort((a, b) => a.seq - b.seq) : frames;
        const store = new Store(db, { journal, recovered, droppedBytes, ...tuning }, lock);
        // Everything recovered is ingested by now (the store's constructor).
        if (fs.existsSync(second)) fs.unlinkSync(second);
        return store;
      } catch (err) {
        journal.close();
        throw err;
      }
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** PRAGMA integrity_check; "ok" when the file is sound. */
  integrityCheck(): string {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }

  close(): void {
    if (!this.db.open) return;
    let durable = false;
    try {
      // A clean stop leaves the log and the index complete and the journal empty: the next start
      // has nothing to recover or catch up.
      this.audit.indexAll();
      // Fold the WAL back so the file on disk is self-contained after a clean stop. Done before
      // the journal is emptied: with durability 'full' only a complete checkpoint (the database
      // file synced) lets it be emptied.
      const [r] = this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      durable = r?.busy === 0;
    } finally {
      try {
        this.audit.close(durable);
      } finally {
        try {
          this.db.close();
        } finally {
          this.lock.release();
        }
      }
    }
  }

  /**
   * Lets go of the files as a killed process would: no ingestion, no checkpoint, the lock
   * dropped. For tests of what the next open recovers.
   */
  abandon(): void {
    this.audit.abandon();
    if (this.db.open) this.db.close();
    this.lock.release();
  }
}

export type { Durability } from './database.ts';
export type { StoredPolicyInfo, NewRevision, DeleteRevisionResult } from './policy-store.ts';
export type { BindResult } from './binding-store.ts';
export type { VmWriteResult } from './vm-store.ts';
export type { NewAuditRecord, AuditFilter, RetentionRule, AuditRecovery } from './audit-store.ts';
