// Opens the state database: WAL, foreign keys, a busy timeout, and the chosen durability.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from './migrations.ts';

/**
 * SQLite `synchronous` in WAL mode, chosen knowingly:
 * - 'normal': a commit is written to the WAL (the OS page cache) but not fsynced. Survives
 *   kill -9 of the daemon at any moment (the WAL is replayed on open); a power loss or kernel
 *   crash can lose the last commits (never corrupts). The default: fast, and a daemon crash is
 *   the failure we expect. Audit records get the same guarantee from one write() to the audit
 *   journal beside the database (audit-journal.ts), ingested into it off the decision path.
 * - 'full': every commit fsyncs the WAL, so answered decisions survive power loss too. Group
 *   commit (runtime/server/audit/audit-writer.ts) makes it one fsync per batch, not per request.
 */
export type Durability = 'normal' | 'full';

export function openDatabase(file: string, durability: Durability): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    // Checkpoints run inside a commit on the daemon's thread; fewer, larger ones (a WAL of up
    // to ~40 MB) cost less per decision than the default of one every 1000 pages.
    db.pragma('wal_autocheckpoint = 10000');
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
