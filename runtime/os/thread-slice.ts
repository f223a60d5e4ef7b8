// A thread's time slice under the kernel's EEVDF scheduler (Linux 6.12+). A fair-class thread
// may ask for a slice shorter than the default (0.7-3 ms, by core count) through
// sched_setattr's runtime field, without privilege: a shorter slice gives it an earlier virtual
// deadline, so when it wakes it is picked, or preempts the thread running, sooner. It does not
// change its share of the CPU (that is its weight, the nice value). Older kernels take the call
// and ignore the field: reading it back tells.
import { errnoName } from './errno.ts';
import { libc, LibcUnavailableError } from './libc.ts';
import { SCHED_BATCH, SCHED_OTHER } from './thread-priority.ts';

/**
 * The daemon's main thread's slice: 0.1 ms, the shortest the kernel takes. It serves every VM
 * and mostly waits; when a request arrives while both cores run workers, compiles or other
 * processes, it should not wait out their slices.
 */
export const MAIN_THREAD_SLICE_NS = 100_000;

/**
 * sched_attr.sched_flags: threads and processes this thread starts begin with the default slice
 * (and a policy and nice value no higher than SCHED_OTHER, nice 0), not its own.
 */
const SCHED_FLAG_RESET_ON_FORK = 0x01;

/** `kernelTooOld`: the call worked, and the kernel keeps no slice per thread (before 6.12). */
export type SliceResult = { ok: true; sliceNs: number } | { ok: false; why: string; kernelTooOld?: true };

/**
 * Asks the kernel for a time slice of `sliceNs` for the calling thread only (the threads and
 * processes it starts later keep the default). Keeps its policy and nice value. Never throws:
 * says why it could not.
 */
export function shortenThisThreadSlice(sliceNs: number): SliceResult {
  try {
    const c = libc();
    const before = c.schedGetattr(0);
    if (!before.ok) return { ok: false, why: `sched_getattr failed: ${errnoName(before.errno)}` };
    const { policy, nice } = before.attr;
    if (policy !== SCHED_OTHER && policy !== SCHED_BATCH)
      return { ok: false, why: `the thread runs under scheduling policy ${policy}, not SCHED_OTHER or SCHED_BATCH` };
    const set = c.schedSetattr(0, { policy, nice, flags: SCHED_FLAG_RESET_ON_FORK, runtimeNs: sliceNs });
    if (!set.ok) return { ok: false, why: `sched_setattr failed: ${errnoName(set.errno)}` };
    const after = c.schedGetattr(0);
    if (!after.ok) return { ok: false, why: `sched_getattr failed: ${errnoName(after.errno)}` };
    if (after.attr.runtimeNs !== sliceNs)
      return {
        ok: false,
        why: `the kernel keeps no slice per thread (asked for ${sliceNs} ns, it reports ${after.attr.runtimeNs}); EEVDF slices came with Linux 6.12`,
        kernelTooOld: true,
      };
    return { ok: true, sliceNs };
  } catch (err) {
    if (err instanceof LibcUnavailableError) return { ok: false, why: err.message };
    throw err;
  }
}
