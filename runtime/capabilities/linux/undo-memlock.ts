// Undoes a set-memlock: puts back the limit read before it, on the same process only. The pid is
// pinned by a pidfd and checked to still be the process the effect was made on (its start time
// was recorded with the effect; a pidfd this thread kept for that very process proves it too),
// and the limit is changed back only if it is still the one the effect set: a later change by
// someone else is not overwritten. Without CAP_SYS_RESOURCE, putting back a hard limit that the
// effect lowered fails (EPERM): that is reported, not hidden.
import { readStartTime } from '../../os/proc-stat.ts';
import type { MemlockEffect } from '../capabilities.ts';
import { errnoName } from '../../os/errno.ts';
import { closeFd, openPidfd, pidfdIsAlive } from '../../os/pidfd.ts';
import { getMemlock } from '../../os/prlimit.ts';
import { libc, RLIMIT_MEMLOCK } from '../../os/libc.ts';
import { recentMembers } from './recent-members.ts';

/** How an undo went, as the audit record says it: "undone", "undo failed: <errno>", or "not undone: <why>". */
export type UndoStatus = string;

export interface MemlockUndo {
  pid: number;
  /** The limit the process has now unless someone else changed it: what the effect set, or,
   * when a later effect on it was undone first, what that undo put back. */
  expected: { soft: bigint; hard: bigint };
  effect: MemlockEffect;
}

/** The limit of `pid` now, if it is still the process that started at `startTime`. */
export function memlockNow(pid: number, startTime: number): { soft: bigint; hard: bigint } | null {
  const opened = openPidfd(pid);
  if (!opened.ok) return null;
  try {
    if (readStartTime(pid) !== startTime) return null;
    const r = getMemlock(pid);
    return r.ok && pidfdIsAlive(opened.pidfd) ? r.old : null;
  } finally {
    closeFd(opened.pidfd);
  }
}

export function undoSetMemlock(u: MemlockUndo): UndoStatus {
  const { pid } = u;
  const { startTime } = u.effect;
  // The effect was most often made through a target this thread still keeps (recent-members.ts):
  // its pidfd, alive, proves that `pid` still names the process of `startTime`, with no pidfd to
  // open and no /proc read (the deny path of every request).
  const kept = recentMembers.pidfdOf(pid, startTime);
  if (kept !== undefined) return putBack(u, kept);
  const opened = openPidfd(pid);
  if (!opened.ok) return `not undone: the process exited (${errnoName(opened.errno)})`;
  try {
    if (readStartTime(pid) !== startTime) return 'not undone: the process exited (its pid now names another one)';
    return putBack(u, opened.pidfd);
  } finally {
    closeFd(opened.pidfd);
  }
}

/** The undo itself, on `pidfd`'s process (alive, and the one of the effect, when this is called). */
function putBack(u: MemlockUndo, pidfd: number): UndoStatus {
  const { pid, expected } = u;
  const { before } = u.effect;
  const now = getMemlock(pid);
  if (!now.ok) return `undo failed: ${errnoName(now.errno)}`;
  if (now.old.soft === before.soft && now.old.hard === before.hard) return 'undone';
  if (now.old.soft !== expected.soft || now.old.hard !== expected.hard)
    return `not undone: the limit was changed since (now ${now.old.soft}/${now.old.hard})`;
  const r = libc().prlimit(pid, RLIMIT_MEMLOCK, { soft: before.soft, hard: before.hard });
  if (!pidfdIsAlive(pidfd)) return 'not undone: the process exited';
  return r.ok ? 'undone' : `undo failed: ${errnoName(r.errno)}`;
}
