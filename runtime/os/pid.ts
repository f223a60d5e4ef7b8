// What counts as a pid worth asking the kernel about.
import { readFileSync } from 'node:fs';

/** The kernel's hard ceiling for pid_max (PID_MAX_LIMIT on 64-bit). */
const PID_MAX_LIMIT = 4_194_304;

let cachedPidMax: number | undefined;

/** /proc/sys/kernel/pid_max: pids are in [1, pid_max). Read once; falls back to the hard ceiling. */
export function pidMax(): number {
  if (cachedPidMax === undefined) {
    try {
      const n = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
      cachedPidMax = Number.isSafeInteger(n) && n > 1 ? n : PID_MAX_LIMIT;
    } catch {
      cachedPidMax = PID_MAX_LIMIT;
    }
  }
  return cachedPidMax;
}

/** A pid the kernel could have handed out: an integer in [1, pid_max). 0 and negatives are special to the kernel. */
export function isValidPid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isInteger(pid) && pid >= 1 && pid < pidMax();
}
