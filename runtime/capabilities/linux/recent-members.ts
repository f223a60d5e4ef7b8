// Targets recently found inside a VM, kept across evaluations for a short time (default: the
// daemon's identity cache, 1 s). A host asks about the same QEMU process on every request; each
// check is a pidfd_open and a /proc walk (~30 µs, twice that under load), a reuse is one
// pidfd_send_signal (~1 µs).
//
// An entry holds the pidfd the check was made through and is reused only while that pidfd is
// alive, i.e. while the pid still names the very process that was checked. What it can miss is
// a change of membership of that same process (reparenting, a cgroup migration) during the entry's
// life: the same bounded window the daemon already accepts for the requester's own VM
// (server/request/requester-vm-cache.ts). Only "member" verdicts are kept: a refusal is always
// re-checked, so a process is never refused for longer than it takes to look again.
import type { RegisteredVm } from '../../identity/vm.ts';
import type { CheckedTarget } from './checked-target.ts';
import { closeFd, pidfdIsAlive } from '../../os/pidfd.ts';

/** Entries per thread at most (each holds one pidfd); the oldest goes first. */
export const MAX_RECENT_MEMBERS = 128;

interface Entry {
  pid: number;
  /** anchorKey of the scope it was found in. */
  scope: string;
  target: CheckedTarget;
  expiresAt: number;
}

/** Membership depends on the VM's anchor only: entries are keyed by it, not by object identity,
 * so a worker that receives a fresh copy of the scope per job still finds them. */
function anchorKey(scope: RegisteredVm): string {
  const a = scope.anchor;
  return `${scope.identity.uuid}|${a.rootPid ?? ''}|${a.rootStartTime ?? ''}|${a.cgroup ?? ''}`;
}

/** A scope's key, made once per scope object (the main thread asks with the same one each time). */
const anchorKeys = new WeakMap<RegisteredVm, string>();
function keyOf(scope: RegisteredVm): string {
  let key = anchorKeys.get(scope);
  if (key === undefined) anchorKeys.set(scope, (key = anchorKey(scope)));
  return key;
}

export class RecentMembers {
  /** By scope, then pid: looked up without making a key string per call. */
  private readonly entries = new Map<string, Map<number, Entry>>();
  /** Every entry, oldest first (the one dropped at capacity). */
  private readonly order = new Set<Entry>();

  constructor(
    private readonly capacity = MAX_RECENT_MEMBERS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A live, unexpired member entry for `pid` in `scope`; the pidfd stays owned by this cache. */
  get(scope: RegisteredVm, pid: number): CheckedTarget | undefined {
    const e = this.entries.get(keyOf(scope))?.get(pid);
    if (e === undefined) return undefined;
    if (e.expiresAt > this.now() && pidfdIsAlive(e.target.pidfd)) return e.target;
    this.drop(e);
    return undefined;
  }

  /** Takes ownership of the target's pidfd when it returns true (member verdicts only). */
  put(scope: RegisteredVm, pid: number, target: CheckedTarget, ttlMs: number): boolean {
    if (!target.verdict.member || ttlMs <= 0 || this.capacity <= 0) return false;
    const key = keyOf(scope);
    const old = this.entries.get(key)?.get(pid);
    if (old !== undefined) this.drop(old);
    while (this.order.size >= this.capacity) this.drop(this.order.values().next().value!);
    const e: Entry = { pid, scope: key, target, expiresAt: this.now() + ttlMs };
    let byPid = this.entries.get(key);
    if (byPid === undefined) this.entries.set(key, (byPid = new Map()));
    byPid.set(pid, e);
    this.order.add(e);
    return true;
  }

  /**
   * A kept pidfd of `pid` whose process is alive and started at `startTime`, or undefined; it
   * stays owned by this cache (use it before anything else runs on this thread). It proves only
   * who `pid` names now, not membership: so expiry, which bounds how long a verdict is trusted,
   * does not apply. Each entry's start time was read through its pidfd (checked-target.ts).
   */
  pidfdOf(pid: number, startTime: number): number | undefined {
    for (const byPid of this.entries.values()) {
      const e = byPid.get(pid);
      if (e !== undefined && e.target.startTime === startTime && pidfdIsAlive(e.target.pidfd)) return e.target.pidfd;
    }
    return undefined;
  }

  get size(): number {
    return this.order.size;
  }

  /** Closes every kept pidfd. */
  clear(): void {
    for (const e of this.order) this.drop(e);
  }

  private drop(e: Entry): void {
    const byPid = this.entries.get(e.scope);
    byPid?.delete(e.pid);
    if (byPid?.size === 0) this.entries.delete(e.scope);
    this.order.delete(e);
    closeFd(e.target.pidfd);
  }
}

/** This thread's cache (each worker thread has its own module instance). */
export const recentMembers = new RecentMembers();
