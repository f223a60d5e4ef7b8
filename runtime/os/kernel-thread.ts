// Is a pid a kernel thread? The kernel's own flag (PF_KTHREAD in field 9 of /proc/<pid>/stat),
// not a guess from its name, its parent or an empty cmdline.
import { readFileSync } from 'node:fs';

/** include/linux/sched.h: "I am a kernel thread". */
const PF_KTHREAD = 0x0020_0000;

/** The flags field of a /proc/<pid>/stat line, or null. Located after the last ')', as comm may hold anything. */
export function parseStatFlags(text: string): number | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // Fields after comm: state (3), ppid (4), pgrp, session, tty_nr, tpgid, flags (9).
  const flags = text
    .slice(close + 1)
    .trim()
    .split(/\s+/)[6];
  return flags !== undefined && /^\d+$/.test(flags) ? Number(flags) : null;
}

/** True for a kernel thread; false for a user process or a pid that does not exist. */
export function isKernelThread(pid: number): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const flags = parseStatFlags(text);
  return flags !== null && (flags & PF_KTHREAD) !== 0;
}
