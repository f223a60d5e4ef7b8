// pidfds: a handle to one process that a reused pid number can never redirect.
// Used as the bread of the "pidfd sandwich": open before checking, confirm alive after acting.
import { libc } from './libc.ts';
import { notePidfdClosing, notePidfdOpened } from './pidfd-ledger.ts';

export type PidfdOpenResult = { ok: true; pidfd: number } | { ok: false; errno: number };

export function openPidfd(pid: number): PidfdOpenResult {
  const r = libc().pidfdOpen(pid);
  if (!r.ok) return { ok: false, errno: r.errno };
  notePidfdOpened(r.value);
  return { ok: true, pidfd: r.value };
}

/** True while the process the pidfd was opened for has not exited (signal 0 sends nothing). */
export function pidfdIsAlive(pidfd: number): boolean {
  return libc().pidfdSendSignal0(pidfd).ok;
}

export function closeFd(fd: number): void {
  notePidfdClosing(fd);
  libc().close(fd);
}
