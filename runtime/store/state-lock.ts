// One daemon per state directory. The audit journal, the in-memory seq counter and the recovery
// at open all assume a single owner: a second daemon on the same files would cut what it takes
// for a torn tail out of the first one's journal, and hand out the same seqs. An exclusive flock
// on `<db>.lock` is held for the store's life; the kernel drops it when the process dies
// (kill -9 included), so it never goes stale and needs no clean-up.
import fs from 'node:fs';
import path from 'node:path';
import { EWOULDBLOCK, errnoName } from '../os/errno.ts';
import { libc, LOCK_EX, LOCK_NB } from '../os/libc.ts';

export class StateLockedError extends Error {
  override readonly name = 'StateLockedError';
}

export interface StateLock {
  release(): void;
}

export function lockFileOf(dbFile: string): string {
  return `${dbFile}.lock`;
}

/** Takes the state directory's lock or throws StateLockedError naming the holder. */
export function lockState(dbFile: string): StateLock {
  const file = lockFileOf(dbFile);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  const r = libc().flock(fd, LOCK_EX | LOCK_NB);
  if (!r.ok) {
    const holder = readHolder(fd);
    fs.closeSync(fd);
    if (r.errno === EWOULDBLOCK) {
      throw new StateLockedError(
        `another capgate daemon${holder ? ` (pid ${holder})` : ''} is using the state in ${path.dirname(file)}: stop it, or give this one another stateDir`,
      );
    }
    throw new Error(`cannot lock ${file}: ${errnoName(r.errno)}`);
  }
  // Who holds it, for the message above (informational: the lock is the flock, not this text).
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      try {
        fs.ftruncateSync(fd, 0); // names no holder once free
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}

function readHolder(fd: number): string | null {
  try {
    const text = fs.readFileSync(fd, 'utf8').trim();
    return /^\d+$/.test(text) ? text : null;
  } catch {
    return null;
  }
}
