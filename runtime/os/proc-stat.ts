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

const SPACE = 0x20;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** A non-negative decimal integer in text[start, end), or NaN (empty, non-digit, or too big). */
function parseDecimal(text: string, start: number, end: number): number {
  if (end <= start) return NaN;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < DIGIT_0 || c > DIGIT_9) return NaN;
    n = n * 10 + (c - DIGIT_0);
  }
  return Number.isSafeInteger(n) ? n : NaN;
}

const isBlank = (c: number): boolean => c === SPACE || c === 0x0a || c === 0x09;

/**
 * Parses one /proc/<pid>/stat line. comm is user-controlled (prctl PR_SET_NAME) and may contain
 * ") " — so the fields after it are located from the LAST ')' in the line, never by splitting.
 * One forward scan from there to field 22, no regex and no array: this runs for every process
 * of every ancestry walk.
 */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open <= 0 || close < open) return null;
  const pidEnd = text.charCodeAt(open - 1) === SPACE ? open - 1 : open;
  const pid = parseDecimal(text, 0, pidEnd);
  let state: string | undefined;
  let ppid = NaN;
  let startTime = NaN;
  // Field N (1-based, as in proc(5)) after the ')': state is 3, ppid 4, starttime 22.
  let field = 2;
  for (let i = close + 1; i < text.length && field < 22; ) {
    while (i < text.length && isBlank(text.charCodeAt(i))) i++;
    if (i === text.length) break;
    const start = i;
    while (i < text.length && !isBlank(text.charCodeAt(i))) i++;
    field++;
    if (field === 3) state = text.slice(start, i);
    else if (field === 4) ppid = parseDecimal(text, start, i);
    else if (field === 22) startTime = parseDecimal(text, start, i);
  }
  if (state === undefined || Number.isNaN(pid) || Number.isNaN(ppid) || Number.isNaN(startTime)) return null;
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
    for (let n = -1; n !== 0 && length < buffer.length; length += n)
      n = readSync(fd, buffer, length, buffer.length - length, null);
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
