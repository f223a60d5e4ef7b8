// set-memlock on Linux, inside a pidfd sandwich:
//   pidfd_open(pid) -> membership in the scope VM -> pidfd still alive? -> prlimit(pid)
//   -> pidfd still alive?
// The pidfd pins the process we checked: if it is alive after prlimit, the pid number was
// never free in between, so prlimit acted on the process we verified. If it is not, the caller
// hears `no-such-process`. (Linux has no prlimit-by-pidfd, so the act itself is by number; the
// only residual window is the target exiting, being reaped and its pid reused between the last
// liveness check and prlimit — microseconds — and even then it is reported, never silent.)
// Between the check and the act, the limit before is read and the intent recorded (effects/):
// a set-memlock that cannot be recorded does not act, so no effect is ever unrecorded.
// The first three steps are done once per pid and evaluation (CheckedTargets), and, when the
// spec allows it, once per pid for a short time across evaluations (recent-members.ts): a later
// call reuses the kept pidfd and verdict after its own liveness check.
//
// No start-time re-read after prlimit: it cannot catch anything the pidfd does not. The kernel
// unhashes a process (release_task -> __unhash_process -> detach_pid) before it frees the pid
// number (free_pids -> free_pid -> idr_remove), and pidfd_send_signal answers ESRCH as soon as
// no task is attached to the pidfd's struct pid (kill_pid_info_type -> pid_task). So "alive after
// prlimit" implies the number still belonged to our process when prlimit resolved it. A same
// process keeps its start time too, even across a non-leader thread's exec (de_thread copies it).
import { readFileSync } from 'node:fs';
import { MEMLOCK_UNLIMITED } from '../../contract/types.ts';
import type { RegisteredVm } from '../../identity/vm.ts';
import type { MemlockEffect, SetMemlockResult } from '../capabilities.ts';
import { isValidPid, pidMax } from '../../os/pid.ts';
import type { TargetFailure } from './checked-target.ts';
import { CheckedTargets } from './checked-targets.ts';
import { EINVAL, ENOENT, errnoName, ESRCH } from '../../os/errno.ts';
import { capabilityErrorForErrno } from '../capability-error.ts';
import { pidfdIsAlive } from '../../os/pidfd.ts';
import { getMemlock, setMemlockRaw } from '../../os/prlimit.ts';
import type { EffectSink, EffectToken } from '../../effects/effect-sink.ts';

/** /proc/<tid>/status exists for threads too; its Tgid names the process they belong to. */
function isThreadId(pid: number): boolean {
  try {
    const tgid = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return tgid !== undefined && Number(tgid) !== pid;
  } catch {
    return false;
  }
}

const gone = (pid: number): SetMemlockResult => ({
  ok: false,
  error: 'no-such-process',
  detail: `pid ${pid} exited or was replaced by another process during the operation`,
});

export function validateMemlockArguments(pid: number, bytes: bigint): SetMemlockResult | null {
  if (!isValidPid(pid))
    return { ok: false, error: 'invalid-argument', detail: `pid ${pid} is not in [1, ${pidMax()})` };
  if (typeof bytes !== 'bigint' || bytes < 0n || bytes > MEMLOCK_UNLIMITED) {
    return { ok: false, error: 'invalid-argument', detail: `bytes ${String(bytes)} is not a u64` };
  }
  return null;
}

/** Test seam: runs between the last check and prlimit, where a real race would strike. */
export interface SandwichProbe {
  beforeAct?: () => void;
}

/** Why no target could be checked, as set-memlock reports it. */
function targetFailure(pid: number, failure: TargetFailure): SetMemlockResult {
  if (failure.kind === 'gone') return gone(pid);
  const errno = failure.errno;
  if (errno === ESRCH) return { ok: false, error: 'no-such-process', detail: `pid ${pid} does not exist` };
  // pidfd_open refuses thread ids of non-leader threads (EINVAL; ENOENT since pidfs, 6.9);
  // rlimits belong to the whole process anyway.
  if (errno === EINVAL || errno === ENOENT) {
    if (isThreadId(pid))
      return { ok: false, error: 'invalid-argument', detail: `pid ${pid} is a thread id, not a process id` };
    if (errno === ENOENT) return { ok: false, error: 'no-such-process', detail: `pid ${pid} does not exist` };
  }
  return { ok: false, error: 'internal', detail: `pidfd_open(${pid}) failed: ${errnoName(errno)}` };
}

/** set-memlock through the targets this evaluation has already checked (see CheckedTargets). */
export function setMemlockChecked(
  targets: CheckedTargets,
  pid: number,
  bytes: bigint,
  probe: SandwichProbe = {},
  effects?: EffectSink,
): SetMemlockResult {
  const invalid = validateMemlockArguments(pid, bytes);
  if (invalid !== null) return invalid;
  return targets.use(
    pid,
    (failure) => targetFailure(pid, failure),
    ({ pidfd, verdict, startTime }) => {
      if (!verdict.member) {
        return {
          ok: false,
          error: 'out-of-scope',
          detail: `pid ${pid} is not inside VM ${targets.scope.identity.uuid} (${verdict.reason})`,
        };
      }
      const read = getMemlock(pid);
      if (!read.ok) {
        if (read.errno === ESRCH) return gone(pid);
        return {
          ok: false,
          error: capabilityErrorForErrno(read.errno),
          detail: `prlimit(${pid}, RLIMIT_MEMLOCK) could not read the limit: ${errnoName(read.errno)}; nothing was changed`,
        };
      }
      let token: EffectToken | undefined;
      if (effects !== undefined) {
        try {
          token = effects.intend({ op: 'set-memlock', pid, startTime, bytes, before: read.old });
        } catch (e) {
          return {
            ok: false,
            error: 'internal',
            detail: `the intent of set-memlock could not be recorded (${e instanceof Error ? e.message : String(e)}); nothing was changed`,
          };
        }
      }
      // (Not a spread of a conditional object: that made two objects per call.)
      const effect: MemlockEffect =
        token !== undefined && token.journal >= 0
          ? { before: read.old, startTime, journalSlot: token.journal }
          : { before: read.old, startTime };
      probe.beforeAct?.();
      const r = setMemlockRaw(pid, bytes);
      if (token !== undefined) effects?.done(token, r.ok ? 0 : r.errno);
      if (!pidfdIsAlive(pidfd)) return { ...gone(pid), effect };
      if (!r.ok) {
        const error = capabilityErrorForErrno(r.errno);
        const why = error === 'not-permitted' ? ' (raising a hard limit needs CAP_SYS_RESOURCE)' : '';
        return { ok: false, error, detail: `prlimit(${pid}, RLIMIT_MEMLOCK): ${errnoName(r.errno)}${why}`, effect };
      }
      return { ok: true, effect };
    },
  );
}

/** One set-memlock on its own: a fresh check, its pidfd closed before returning. */
export function setMemlockInScope(
  scope: RegisteredVm,
  pid: number,
  bytes: bigint,
  probe: SandwichProbe = {},
  effects?: EffectSink,
): SetMemlockResult {
  return setMemlockChecked(new CheckedTargets(scope, 0), pid, bytes, probe, effects);
}
