// RLIMIT_MEMLOCK of another process through libc prlimit(2) (~1 µs; the CLI costs ~1.6 ms).
import { libc, RLIMIT_MEMLOCK, type RlimitValue } from './libc.ts';

/** RLIM_INFINITY: all ones in 64 bits (the contract's MEMLOCK_UNLIMITED is the same value). */
export const RLIM_INFINITY = (1n << 64n) - 1n;

export type PrlimitResult = { ok: true; old: RlimitValue } | { ok: false; errno: number };

/** Sets soft and hard RLIMIT_MEMLOCK of `pid` to `bytes`; returns the previous limits. No checks. */
export function setMemlockRaw(pid: number, bytes: bigint): PrlimitResult {
  return libc().prlimit(pid, RLIMIT_MEMLOCK, { soft: bytes, hard: bytes });
}

export function getMemlock(pid: number): PrlimitResult {
  return libc().prlimit(pid, RLIMIT_MEMLOCK, null);
}
