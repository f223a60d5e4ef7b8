// RLIMIT_MEMLOCK of another process through libc prlimit(2) (~1 µs; the CLI costs ~1.6 ms).
import { libc, RLIMIT_MEMLOCK, type RlimitValue } from './libc.ts';

/** RLIM_INFINITY: all ones in 64 bits (the contract's MEMLOCK_UNLIMITED is the same value). */
export const RLIM_INFINITY = (1n << 64n) - 1n;

export type PrlimitResult = { ok: true; old: RlimitValue } | { ok: false; errno: number };

export type SetResult = { ok: true } | { ok: false; errno: number };

const SET: SetResult = Object.freeze({ ok: true });

/** Sets soft and hard RLIMIT_MEMLOCK of `pid` to `bytes`. No checks. (The limits before are
 * read by getMemlock first, for the intent and the undo: not read back here.) */
export function setMemlockRaw(pid: number, bytes: bigint): SetResult {
  const errno = libc().setRlimit(pid, RLIMIT_MEMLOCK, bytes, bytes);
  return errno === 0 ? SET : { ok: false, errno };
}

export function getMemlock(pid: number): PrlimitResult {
  return libc().prlimit(pid, RLIMIT_MEMLOCK, null);
}
