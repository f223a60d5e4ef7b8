// RLIMIT_MEMLOCK of another process through libc prlimit(2) (~1 µs; the CLI costs ~1.6 ms).
import { MEMLOCK_UNLIMITED } from '../../contract/types.ts';
import { libc, RLIMIT_MEMLOCK, type RlimitValue } from './libc.ts';

/** RLIM_INFINITY is all ones in 64 bits, the same value as the contract's "unlimited". */
export const RLIM_INFINITY = MEMLOCK_UNLIMITED;

export type PrlimitResult = { ok: true; old: RlimitValue } | { ok: false; errno: number };

/** Sets soft and hard RLIMIT_MEMLOCK of `pid` to `bytes`; returns the previous limits. No checks. */
export function setMemlockRaw(pid: number, bytes: bigint): PrlimitResult {
  return libc().prlimit(pid, RLIMIT_MEMLOCK, { soft: bytes, hard: bytes });
}

export function getMemlock(pid: number): PrlimitResult {
  return libc().prlimit(pid, RLIMIT_MEMLOCK, null);
}
