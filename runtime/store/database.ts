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
 * - 'full': answered decisions survive a power loss too. Their records are written to the audit
 *   journal and answered once an fdatasync of it, on libuv's thread pool, returned (group commit,
 *   audit-journal-synced.ts): never a sync on the main thread for a decision. This connection
 *   runs with synchronous=FULL for the admin's writes (policies, bindings, VMs: rare, the
 *   operator's); the audit store switches it to NORMAL around its own transactions, whose
 *   durability the journal keeps until the WAL is synced off the main thread.
 */
export type Durability = 'normal' | 'full';

/** Files the daemon's state is made of are for root only: 0600, whatever the caller's umask. */
const PRIVATE_UMASK = 0o077;

/** Runs `open` with umask 077, so that every file SQLite creates in it (the database, -wal, -shm, -journal) is 0600. */
function privately<T>(open: () => T): T {
  const previous = process.umask(PRIVATE_UMASK);
  try {
    return open();
  } finally {
    process.umask(previous);
  }
}

/** A database file an older capgate created with a wider mode (SQLite gives -wal and -shm its mode). */
function tighten(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      const st = fs.lstatSync(f);
      if (st.isFile() && (st.mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
    } catch {
      // not there: nothing to tighten
    }
  }
}

export function openDatabase(file: string, durability: Durability): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  tighten(file);
  return privately(() => configure(new Database(file), durability));
}

function configure(db: Database.Database, durability: Durability): Database.Database {
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    // Never a checkpoint inside a commit: it would copy and fsync the whole log (80-120 ms
    // measured at 40 MB) in whichever commit crossed the threshold, on the daemon's main thread,
    // at a moment any client can bring about. The daemon checkpoints in a worker thread
    // (checkpoint/wal-checkpointer.ts); Store.close checkpoints what is left.
    db.pragma('wal_autocheckpoint = 0');
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
