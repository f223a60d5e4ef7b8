// /proc/<pid>/stat: the kernel's view of a process's parent and start time.
import { closeSync, openSync, readSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  /** The command name; may contain spaces and parentheses. */
  comm: string;
  state: string;
  ppid: number;
  /** Field 22: start time in clock ticks since boot. With the pid, it names one process forever. */
  startTime: number;
}

/**
 * Parses one /proc/<pid>/stat line. comm is user-controlled (prctl PR_SET_NAME) and may contain
 * ") " — so the fields after it are located from the LAST ')' in the line, never by splitting.
 */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open <= 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 1).trim().split(/\s+/);
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const state = rest[0];
  const ppid = Number(rest[1]);
  const startTime = Number(rest[22 - 3]);
  if (state === undefined || !Number.isSafeInteger(pid) || !Number.isSafeInteger(ppid) || !Number.isSafeInteger(startTime)) return null;
  return { pid, comm: text.slice(open + 1, close), state, ppid, startTime };
}

// One reused buffer: /proc/<pid>/stat is well under 1 KiB (52 numeric fields, comm <= 64 bytes).
// open/read/close on it avoids readFileSync's fstat and allocation; this is on every request path.
const buffer = Buffer.alloc(4096);

function readSmallFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    let length = 0;
    for (let n = -1; n !== 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    return buffer.toString('utf8', 0, length);
  } catch {
    return null; // ESRCH: the process exited between open and read
  } finally {
    closeSync(fd);
  }
}

/** The stat of a live process, or null if there is none (or it vanished while we read). */
export function readProcStat(pid: number): ProcStat | null {
  const text = readSmallFile(`/proc/${pid}/stat`);
  if (text === null) return null;
  const stat = parseProcStat(text);
  return stat !== null && stat.pid === pid ? stat : null;
}

/** Start time of `pid` (clock ticks since boot), or null when no such process exists. */
export function readStartTime(pid: number): number | null {
  return readProcStat(pid)?.startTime ?? null;
}
