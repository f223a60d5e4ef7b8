// The WAL checkpoint worker: a thread with its own connection to the daemon's database that
// copies the write-ahead log back into the database (PRAGMA wal_checkpoint(PASSIVE)) once more
// than `thresholdPages` frames wait in it. The daemon's own connection never checkpoints on
// commit (database.ts): a checkpoint copies and fsyncs megabytes, 80-120 ms measured, and would
// run inside whichever commit crossed the threshold, on the main thread every VM shares.
// PASSIVE never takes the writer's lock and never waits: the main thread's commits go on during
// a checkpoint, and one that cannot copy everything (a reader still needs old frames) copies
// what it can and tries again at the next look. Started by wal-checkpointer.ts.
// The worker also makes the first write to a log that was copied back completely (restartLog):
// that write starts the log again from its beginning, and SQLite syncs the log's new header in
// it (unless synchronous=OFF, which could corrupt the database on a power loss). Made here, that
// fsync is this thread's; made by the main thread's next audit batch, it was the main thread's,
// at a rate clients set.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CheckpointReport, CheckpointWorkerInit, FromCheckpointWorker, ToCheckpointWorker } from './protocol.ts';
import { lookAtWal } from './wal-index.ts';
import { WriteHold } from './write-hold.ts';
import { nameThisThread } from '../../os/thread-name.ts';

/** How long the worker waits, under the hold, for a write of the main thread under way to end
 * (a batch is bounded to ~1 ms; a commit with durability 'full' is one fsync). */
const WAIT_FOR_MAIN_MS = 50;
/** The poll while checkpoints are needed (one after another). */
const BUSY_POLL_MS = 10;

interface PassResult {
  busy: number;
  log: number;
  checkpointed: number;
}

const init = workerData as CheckpointWorkerInit;
// Named, so that top -H and the isolation bench tell it from the daemon's other threads.
try {
  nameThisThread('capgate-wal');
} catch {}
const port = parentPort!;
const send = (m: FromCheckpointWorker): void => port.postMessage(m);

// fileMustExist: the daemon's connection created the database; this one never creates a file.
// (SQLite gives the -wal and -shm files the database's mode, 0600, were it ever to.)
const db = new Database(init.database, { fileMustExist: true });
db.pragma(`synchronous = ${init.durability === 'full' ? 'FULL' : 'NORMAL'}`);
db.pragma('wal_autocheckpoint = 0');
const checkpoint = db.prepare<[], PassResult>('PRAGMA wal_checkpoint(PASSIVE)');
// A write that changes nothing: user_version written back as it is, in one transaction.
const userVersion = db.prepare<[], number>('PRAGMA user_version').pluck();
const restartWrite = db.transaction(() => {
  db.pragma(`user_version = ${userVersion.get()!}`);
});
const hold = new WriteHold(init.hold);

let checkpoints = 0;
let retryAt = 0;
let retryMs = 0;
let walIndexUnreadable = false;

/** Looks at the WAL and checkpoints if enough waits (or if it cannot tell); `forced` ignores a back-off. */
function look(forced: boolean): number | null {
  if (!forced && Date.now() < retryAt) return null;
  const wal = lookAtWal(init.database);
  if (!wal.ok && !walIndexUnreadable) {
    walIndexUnreadable = true;
    send({ type: 'wal-index-unreadable', reason: wal.reason });
  }
  if (wal.ok && wal.framesWaiting < init.thresholdPages) return wal.framesWaiting;
  try {
    const report = run(wal.ok ? wal.framesWaiting : null);
    retryMs = 0;
    checkpoints++;
    send({ type: 'checkpointed', report });
  } catch (err) {
    retryMs = retryMs === 0 ? init.retryMs.first : Math.min(2 * retryMs, init.retryMs.max);
    retryAt = Date.now() + retryMs;
    send({ type: 'failed', message: (err as Error).message });
  }
  const after = lookAtWal(init.database);
  return after.ok ? after.framesWaiting : null;
}

function run(framesBefore: number | null): CheckpointReport {
  if (init.seams?.failCheckpoints !== undefined) throw new Error(init.seams.failCheckpoints);
  const t0 = performance.now();
  // The bulk, while the main thread writes on; then what was committed meanwhile, with the main
  // thread's background writes held (write-hold.ts), so that the log is complete when its next
  // write begins, and that write starts the log again from its beginning.
  let r = checkpoint.get()!;
  let passes = 1;
  if (r.busy === 0) {
    hold.raise(WAIT_FOR_MAIN_MS);
    try {
      const left = lookAtWal(init.database);
      if (!left.ok || left.framesWaiting > 0) {
        r = checkpoint.get()!;
        passes++;
      }
      restartLog();
    } finally {
      hold.lower();
    }
  }
  return {
    framesBefore,
    log: r.log,
    checkpointed: r.checkpointed,
    busy: r.busy !== 0,
    passes,
    ms: performance.now() - t0,
  };
}

/**
 * Under the hold: when every frame of the log is copied back, writes first (see the top). A main
 * thread reading at that moment keeps SQLite from starting the log again: then this write goes
 * at its end, the log is no longer complete, and the main thread's next write does not restart
 * it either (so it syncs nothing); the next checkpoint tries again.
 */
function restartLog(): void {
  const wal = lookAtWal(init.database);
  if (!wal.ok || wal.framesWaiting > 0) return;
  try {
    restartWrite.immediate();
  } catch (err) {
    send({ type: 'failed', message: `starting the WAL again: ${(err as Error).message}` });
  }
}

// After a checkpoint, the next look comes sooner: writes that filled the log past the threshold
// within one poll keep coming, and the log stays near the threshold only if it is copied as often.
let timer: NodeJS.Timeout;
const poll = (): void => {
  const checkpointsBefore = checkpoints;
  look(false);
  timer = setTimeout(poll, checkpoints > checkpointsBefore ? Math.min(init.pollMs, BUSY_POLL_MS) : init.pollMs);
};
timer = setTimeout(poll, init.pollMs);
port.on('message', (m: ToCheckpointWorker) => {
  if (m.type === 'check') {
    send({ type: 'checked', id: m.id, framesWaiting: look(true) });
  } else if (m.type === 'restart') {
    // The main thread found the log complete before a write of its own, and deferred it.
    hold.raise(WAIT_FOR_MAIN_MS);
    try {
      restartLog();
    } finally {
      hold.lower();
    }
  } else {
    clearTimeout(timer);
    db.close();
    port.close();
  }
});
send({ type: 'ready' });
