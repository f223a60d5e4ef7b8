// The audit journal with durability 'full': the records of a group commit are written to the
// journal on the main thread (one write(), as with 'normal') and made durable by an fdatasync on
// libuv's thread pool; a record is acknowledged only once that fdatasync has returned. The main
// thread never makes a sync system call for the audit: its SQLite transactions that move records
// into audit_log run with synchronous=NORMAL (audit-store.ts), so they are durable only once the
// write-ahead log is synced, and that happens on the thread pool too.
//
// Two segment files, `<db>-audit-journal` and `<db>-audit-journal-b` (0600): records are
// appended to the active one. The journal may be emptied only once what it holds is durable in
// the database as well, and records keep arriving meanwhile, so a segment is retired, not
// emptied in place:
// 1. When an fdatasync starts and the active segment is over its size while the other one is
//    empty, the other one becomes active: that fdatasync covers everything the old one will ever
//    hold, and the records written from then on go to the new one.
// 2. Once the retired segment is synced and every synced record is ingested (the ingester tells
//    it, drained), its records' ingest transactions have all committed. An fdatasync of the WAL
//    (`<db>-wal`) starts: once it returns, those transactions are on disk. (A transaction's
//    frames are either still in the WAL file, synced now, or were overwritten after a checkpoint
//    copied every frame back: SQLite restarts the log only once nBackfill reached its end, and a
//    checkpoint advances nBackfill that far only after it synced the database file.)
// 3. Then, and only then, the retired segment is emptied. It becomes active again only once it
//    is empty, so the truncation never races a record that is not yet durable in the database.
// A WAL sync that fails leaves the retired segment as it is (tried again a second later, at the
// next drained): the active one grows meanwhile, and nothing is lost. After a crash, recovery
// reads both segments (seqs decide the order) and ingests what is above the database's mark.
//
// A failed fdatasync of the journal is an audit failure: every record written and not yet synced
// (in either segment) is cut off the journal again (its writer is told it failed, so the decision
// is not answered and its effects are undone), and appends go on. A cut that fails makes the
// journal refuse appends until a restart, as after a failed write (audit-journal.ts).
import fs from 'node:fs';
import path from 'node:path';
import { AuditJournal, FS_IO, type JournalFrame, type JournalIo } from './audit-journal.ts';

/** The second segment of the journal of a database file. */
export function secondJournalFileOf(journalFile: string): string {
  return `${journalFile}-b`;
}

/** After a failed WAL sync, how long the retired segment waits before it is tried again. */
const RETIRE_RETRY_MS = 1000;

export interface OpenedSyncedJournal {
  journal: SyncedAuditJournal;
  /** The valid frames of both segments, in seq order. */
  frames: JournalFrame[];
  droppedBytes: number;
}

export class SyncedAuditJournal {
  #active: 0 | 1;
  /** Bytes of each segment known to be on disk. */
  readonly #synced: [number, number];
  #syncing = false;
  #retiring = false;
  #retryAt = 0;
  #closed = false;
  /** A segment file was created by this open: its directory entry is synced with the first sync. */
  #directoryUnsynced: boolean;

  private constructor(
    private readonly segments: [AuditJournal, AuditJournal],
    active: 0 | 1,
    private readonly walFile: string,
    private readonly io: JournalIo,
    directoryUnsynced: boolean,
    /** Size of the active segment beyond which the next fdatasync moves appends to the other one. */
    private readonly rotateAboveBytes: number,
    /** A WAL sync or a retired segment's truncation failed (the daemon logs it). */
    private readonly onRetireError: (err: Error) => void,
  ) {
    this.#active = active;
    // What the open found is recovered (ingested) as it is: nothing to sync in it.
    this.#synced = [segments[0].size, segments[1].size];
    this.#directoryUnsynced = directoryUnsynced;
  }

  /** Opens (creates) both segments of `journalFile`, reads their frames and cuts off a torn tail. */
  static open(
    databaseFile: string,
    journalFile: string,
    options: { io?: Partial<JournalIo>; rotateAboveBytes: number; onRetireError?: (err: Error) => void },
  ): OpenedSyncedJournal {
    const io = options.io ?? {};
    const files = [journalFile, secondJournalFileOf(journalFile)] as const;
    const created = files.some((f) => !fs.existsSync(f));
    const a = AuditJournal.open(files[0], io);
    let b: ReturnType<typeof AuditJournal.open>;
    try {
      b = AuditJournal.open(files[1], io);
    } catch (err) {
      a.journal.close();
      throw err;
    }
    // The active one: an empty segment if there is one, else the one with the newest records
    // (the other holds only what the open's recovery ingests, and is retired first).
    const lastSeq = (f: JournalFrame[]): number => f.at(-1)?.seq ?? 0;
    const active: 0 | 1 =
      b.journal.size === 0 ? 1 : a.journal.size === 0 ? 0 : lastSeq(b.frames) > lastSeq(a.frames) ? 1 : 0;
    const journal = new SyncedAuditJournal(
      [a.journal, b.journal],
      active,
      `${databaseFile}-wal`,
      { ...FS_IO, ...io },
      created,
      options.rotateAboveBytes,
      options.onRetireError ?? (() => {}),
    );
    return {
      journal,
      frames: [...a.frames, ...b.frames].sort((x, y) => x.seq - y.seq),
      droppedBytes: a.droppedBytes + b.droppedBytes,
    };
  }

  /** Appends the frames to the active segment with one write (not yet durable: see sync). */
  append(frames: readonly JournalFrame[]): void {
    this.segments[this.#active].append(frames);
  }

  /** Bytes written and not yet known to be on disk. */
  get unsyncedBytes(): number {
    return this.segments[0].size - this.#synced[0] + this.segments[1].size - this.#synced[1];
  }

  /** An fdatasync of the journal is under way. */
  get syncing(): boolean {
    return this.#syncing;
  }

  /**
   * Makes every byte written before the call durable: fdatasync of the active segment on the
   * thread pool (and, the first time after a segment was created, of the state directory).
   * `done(null)` once it returned. On failure, everything written and not yet synced (before the
   * call and since, in either segment) is cut off the journal before `done(err)` runs. One at a time.
   */
  sync(done: (err: Error | null) => void): void {
    if (this.#syncing) throw new Error('an fdatasync of the audit journal is already under way');
    const index = this.#active;
    const segment = this.segments[index];
    const target = segment.size;
    const other: 0 | 1 = index === 0 ? 1 : 0;
    // Step 1 (see the top): this fdatasync covers all the old segment will ever hold.
    if (target > this.rotateAboveBytes && this.segments[other].size === 0 && !this.#retiring) this.#active = other;
    this.#syncing = true;
    const finish = (err: Error | null): void => {
      this.#syncing = false;
      if (this.#closed) {
        this.#closeSegments(); // deferred by close(): the fd was in use on the thread pool
        return done(err ?? new Error('the audit journal was closed during its fdatasync'));
      }
      if (err !== null) {
        for (const k of [0, 1] as const) this.segments[k].cutTo(this.#synced[k]);
        return done(err);
      }
      this.#synced[index] = Math.max(this.#synced[index], target);
      done(null);
    };
    segment.sync((err) => {
      if (err !== null || !this.#directoryUnsynced) return finish(err);
      this.io.syncFile(path.dirname(segment.file), (dirErr) => {
        if (dirErr === null) this.#directoryUnsynced = false;
        finish(dirErr);
      });
    });
  }

  /**
   * Every synced record is in audit_log (committed): a retired segment that is synced is emptied
   * once an fdatasync of the WAL, started now, has returned (see the top). `_aboveBytes`: the
   * ingester's threshold; this journal rotates by its own (rotateAboveBytes).
   */
  drained(_aboveBytes: number): void {
    if (this.#closed || this.#retiring || Date.now() < this.#retryAt) return;
    const index: 0 | 1 = this.#active === 0 ? 1 : 0;
    const retired = this.segments[index];
    if (retired.size === 0 || this.#synced[index] < retired.size) return;
    this.#retiring = true;
    this.io.syncFile(this.walFile, (err) => {
      this.#retiring = false;
      if (this.#closed) return;
      try {
        if (err !== null) throw err;
        retired.truncate();
        this.#synced[index] = 0;
      } catch (e) {
        this.#retryAt = Date.now() + RETIRE_RETRY_MS;
        this.onRetireError(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /**
   * Empties both segments: only when the database is durable and complete (after a checkpoint
   * that copied everything back, at a clean stop) and nothing is unsynced.
   */
  emptyAll(): void {
    if (this.#syncing || this.unsyncedBytes > 0) return;
    for (const s of this.segments) s.truncate();
    this.#synced[0] = this.#synced[1] = 0;
  }

  /** Closes both segments (once an fdatasync under way has returned: its fd is in use until then). */
  close(): void {
    this.#closed = true;
    if (!this.#syncing) this.#closeSegments();
  }

  #closeSegments(): void {
    for (const s of this.segments) s.close();
  }
}
