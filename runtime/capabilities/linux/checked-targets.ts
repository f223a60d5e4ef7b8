// The targets one evaluation has checked, kept by pid so that a policy asking about the same
// process twice (query-vm-identity, then set-memlock) walks /proc once.
//
// A kept entry holds the pidfd the check was made through. Reusing its verdict later is sound
// only while that pidfd is alive (pidfd_send_signal 0): then the pid number still names the same
// process, never a successor (the number is freed only after the reap, and the reap is when the
// pidfd starts answering ESRCH). Once it is not alive, the entry is dropped and the pid checked
// afresh, like any first call.
//
// What a kept verdict can miss is a change of membership of the SAME process: its ancestry changes
// only by reparenting (its parent exits, it moves to a subreaper or init), its cgroup only by a
// migration someone with write access to cgroup.procs makes. Both can already happen today between
// the membership check and prlimit; keeping the verdict stretches that window from microseconds to
// at most one evaluation (bounded by the engine's deadline), about a process that WAS verifiably
// in the requester's VM, pinned by pidfd. A kept "not a member" is only ever stale towards refusing.
import type { RegisteredVm } from '../../identity/vm.ts';
import { breaksPin, checkTarget, type CheckedTarget, type PinnedTarget, type TargetFailure } from './checked-target.ts';
import { closeFd, pidfdIsAlive } from '../../os/pidfd.ts';
import type { RecentMembers } from './recent-members.ts';

/** pidfds kept per evaluation at most; beyond it calls still work, each with its own pidfd. The
 * engine caps capability calls per evaluation (16) too, but this bound does not rely on it. */
export const MAX_KEPT_TARGETS = 16;

export class CheckedTargets {
  /** Made on the first target kept: most evaluations keep none (members go to the thread's cache). */
  private kept: Map<number, CheckedTarget> | undefined;
  private released = false;

  /**
   * `capacity` 0: nothing is kept, every call checks afresh and closes its pidfd. `recent`: members
   * found by earlier evaluations of this thread are reused for `ttlMs` (recent-members.ts).
   * `pinned`: the process the daemon translated the request's target to; any use of its pid
   * (fresh, kept or recent) fails as `gone` unless the target checked is that very process.
   */
  constructor(
    readonly scope: RegisteredVm,
    private readonly capacity: number = MAX_KEPT_TARGETS,
    private readonly recent?: { members: RecentMembers; ttlMs: number },
    private readonly pinned?: PinnedTarget,
  ) {}

  /**
   * Runs `body` with a checked target for `pid` whose pidfd was alive just before: a kept one,
   * or a fresh check (kept if there is room). The pidfd is the caller's to use, never to close.
   */
  use<T>(pid: number, onFailure: (failure: TargetFailure) => T, body: (target: CheckedTarget) => T): T {
    const kept = this.kept?.get(pid);
    if (kept !== undefined) {
      if (pidfdIsAlive(kept.pidfd)) return breaksPin(kept, pid, this.pinned) ? onFailure({ kind: 'gone' }) : body(kept);
      this.kept!.delete(pid);
      closeFd(kept.pidfd);
    }
    const recent = this.recent?.members.get(this.scope, pid);
    if (recent !== undefined) return breaksPin(recent, pid, this.pinned) ? onFailure({ kind: 'gone' }) : body(recent);
    const checked = checkTarget(this.scope, pid, this.pinned);
    if (!checked.ok) return onFailure(checked.failure);
    // A member goes to the thread's cache, which owns its pidfd from then on.
    if (this.recent?.members.put(this.scope, pid, checked.target, this.recent.ttlMs)) return body(checked.target);
    if (!this.released && this.size < this.capacity) {
      (this.kept ??= new Map()).set(pid, checked.target);
      return body(checked.target);
    }
    try {
      return body(checked.target);
    } finally {
      closeFd(checked.target.pidfd);
    }
  }

  /** Number of pidfds currently kept open. */
  get size(): number {
    return this.kept?.size ?? 0;
  }

  /** Closes every kept pidfd; later calls keep nothing. Idempotent. */
  release(): void {
    this.released = true;
    if (this.kept === undefined) return;
    for (const target of this.kept.values()) closeFd(target.pidfd);
    this.kept.clear();
  }
}
