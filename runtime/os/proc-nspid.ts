// /proc/<pid>/status NSpid: a process's pid in every pid namespace from the one /proc belongs to
// (the daemon's) down to the process's own. Its length is the process's depth below the daemon's
// namespace plus one; its last entry is the pid the process sees for itself. World-readable, so
// no ptrace access is needed (unlike /proc/<pid>/ns/pid, which a daemon without CAP_SYS_PTRACE
// cannot read for another uid's process).
import { readFileSync } from 'node:fs';

/** The NSpid list of a /proc/<pid>/status text, or null when it has none or it is malformed. */
export function parseNsPid(status: string): number[] | null {
  const line = /^NSpid:(.*)$/m.exec(status)?.[1];
  if (line === undefined) return null;
  const fields = line.trim().split(/\s+/);
  if (fields.length > MAX_PID_NAMESPACE_LEVELS) return null;
  const pids: number[] = [];
  for (const f of fields) {
    if (!/^[1-9][0-9]{0,9}$/.test(f)) return null;
    pids.push(Number(f));
  }
  return pids;
}

/** The kernel nests pid namespaces at most 32 deep (MAX_PID_NS_LEVEL). */
export const MAX_PID_NAMESPACE_LEVELS = 33;

/** The NSpid list of a live process, or null (no such process, or no NSpid: kernel < 4.1). */
export function readNsPid(pid: number): number[] | null {
  try {
    return parseNsPid(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return null;
  }
}
