// The target pid of a request is a pid of the REQUESTER's pid namespace: libvirt in a
// virt-launcher pod names QEMU as the pod sees it, while the daemon (hostPID) reads /proc and
// calls prlimit in the node's namespace. This turns the requester's number into the daemon's.
//
// Nothing the client sends is trusted: the kernel says where the requester is (SO_PEERCRED gives
// its pid in our namespace, NSpid its pids below), and the target is searched for among the
// processes of the requester's VM (its cgroup's, when it is anchored by cgroup only; otherwise
// every process /proc shows): the one at the requester's depth whose pid there is the number
// sent, and that is in the requester's own namespace (pid-namespace-top.ts). A number that names
// no such process, or one outside the VM, is refused. The result is pinned by start time, and the
// capability that acts on it checks that start time again through its pidfd, so a target that
// exits and whose host pid is reused before the policy acts is reported gone, never acted on.
import { checkMembership } from './membership.ts';
import { cgroupProcesses } from '../os/cgroup-processes.ts';
import { namespacePosition, type NamespacePosition } from './pid-namespace-top.ts';
import { listProcPids } from '../os/proc-pids.ts';
import { readNsPid } from '../os/proc-nspid.ts';
import { readStartTime } from '../os/proc-stat.ts';
import { closeFd, openPidfd, pidfdIsAlive } from '../os/pidfd.ts';
import type { SearchBudget } from './search-budget.ts';
import type { RegisteredVm } from './vm.ts';

/** Processes searched at most for one translation; beyond, the request is refused (fails closed). */
export const MAX_TRANSLATION_CANDIDATES = 16_384;

export type TargetTranslation =
  /** The requester is in the daemon's pid namespace: the number means what it says. */
  | { kind: 'same-namespace' }
  /** The requester's number names `hostPid` (with `startTime`), a process of its VM. */
  | { kind: 'translated'; hostPid: number; startTime: number }
  /** Deny: why the number names no process of the requester's VM in its namespace. */
  | { kind: 'refused'; detail: string };

export interface Requester {
  pid: number;
  /** Start time read when the requester connected (pins the pid to that process). */
  startTime: number;
  /**
   * Its NSpid: read by the first translation (pinned by `startTime`) and kept here, whatever it
   * says (a process's pids and namespace never change), so a caller that passes the same object
   * for every request of a connection reads /proc for it once, in the daemon's namespace too. The
   * caller keeps the object only as long as that very process is connected (its pidfd is alive).
   */
  nsPids?: readonly number[];
  /**
   * Where it is among pid namespaces (namespacePosition, pinned by `startTime`): found by the
   * first translation that needs it and kept, like `nsPids`. Its namespace never changes; its
   * top can (a top that joined by setns exits: its chain then ends at the namespace's init),
   * but every process found under the kept top is in that same namespace, so a kept top only
   * ever misses a process (refused), never names one of another namespace.
   */
  position?: NamespacePosition;
}

interface Entry {
  hostPid: number;
  startTime: number;
  /** A pidfd of that process, opened once its start time was checked: alive = still it. */
  pidfd: number;
  /** The VM anchor (anchorKey) it was last found inside, and until when that verdict is reused. */
  member?: { anchor: string; until: number };
}

/** Membership depends on the VM's anchor only (as in capabilities/linux/recent-members.ts). */
function anchorKey(vm: RegisteredVm): string {
  const a = vm.anchor;
  return `${vm.identity.uuid}|${a.rootPid ?? ''}|${a.rootStartTime ?? ''}|${a.cgroup ?? ''}`;
}

/**
 * Recent translations, by (requester's namespace top, number sent). See TranslationCache.get.
 * Each entry holds a pidfd of the process it names (at most `capacity`): close() them all.
 */
export class TranslationCache {
  private readonly entries = new Map<string, Entry>();
  /**
   * `memberTtlMs`: how long a "found inside the VM" verdict is reused for the same process (the
   * window the daemon accepts for the requester's own VM, request.identityCacheMs); 0: never.
   */
  constructor(
    private readonly capacity = 256,
    private readonly memberTtlMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  static key(position: NamespacePosition, targetPid: number): string {
    return `${position.top.pid}/${position.top.startTime}/${targetPid}`;
  }

  /**
   * A host pid found before for this key, if that very process still lives (its pidfd is
   * alive). Sound without a time limit: a process keeps its pid in every namespace for life,
   * and its namespace never changes, so while it lives the number sent names it and nothing else.
   */
  get(key: string): { hostPid: number; startTime: number } | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (pidfdIsAlive(e.pidfd)) return { hostPid: e.hostPid, startTime: e.startTime };
    this.drop(key, e);
    return undefined;
  }

  /** Keeps a translation, pinned through a pidfd; not kept if the process is no longer the one found. */
  put(key: string, value: { hostPid: number; startTime: number }): void {
    const old = this.entries.get(key);
    if (old !== undefined) this.drop(key, old);
    if (this.capacity <= 0) return;
    const opened = openPidfd(value.hostPid);
    if (!opened.ok) return;
    // Opened by number: it holds the process found only if that one still has its start time.
    if (readStartTime(value.hostPid) !== value.startTime || !pidfdIsAlive(opened.pidfd)) {
      closeFd(opened.pidfd);
      return;
    }
    while (this.entries.size >= this.capacity) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Entry];
      this.drop(oldestKey, oldest);
    }
    this.entries.set(key, { hostPid: value.hostPid, startTime: value.startTime, pidfd: opened.pidfd });
  }

  /** Whether `key`'s process was found inside `vm` less than memberTtlMs ago (the caller just had get() say it lives). */
  isMember(key: string, vm: RegisteredVm): boolean {
    const m = this.entries.get(key)?.member;
    return m !== undefined && m.anchor === anchorKey(vm) && this.now() < m.until;
  }

  /** `key`'s process was just found inside `vm`. */
  noteMember(key: string, vm: RegisteredVm): void {
    const e = this.entries.get(key);
    if (e !== undefined && this.memberTtlMs > 0)
      e.member = { anchor: anchorKey(vm), until: this.now() + this.memberTtlMs };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Closes every pidfd (the daemon's shutdown). */
  close(): void {
    for (const [key, e] of this.entries) this.drop(key, e);
  }

  private drop(key: string, e: Entry): void {
    this.entries.delete(key);
    closeFd(e.pidfd);
  }
}

let daemonDepthCached: number | undefined;
/** Length of the daemon's own NSpid: 1 when /proc is of the daemon's namespace (checked at start). */
function daemonDepth(): number {
  daemonDepthCached ??= readNsPid(process.pid)?.length ?? 1;
  return daemonDepthCached;
}

const vmName = (vm: RegisteredVm): string => `VM "${vm.identity.name}" (${vm.identity.uuid})`;

/** The processes to search: the VM's cgroup subtree when that alone anchors it, else all of /proc. */
function candidates(
  vm: RegisteredVm,
  limit: number,
): { kind: 'listed'; pids: number[]; where: string } | { kind: 'refused'; detail: string } {
  const { cgroup, rootPid } = vm.anchor;
  if (cgroup !== undefined && rootPid === undefined) {
    const listed = cgroupProcesses(cgroup, limit);
    if (listed.kind === 'listed') return { kind: 'listed', pids: listed.pids, where: `cgroup ${cgroup}` };
    if (listed.kind === 'too-many')
      return {
        kind: 'refused',
        detail: `cgroup ${cgroup} of ${vmName(vm)} holds more than ${limit} processes to search`,
      };
  }
  const all = listProcPids(limit);
  if (all.kind === 'listed') return { kind: 'listed', pids: all.pids, where: '/proc' };
  return {
    kind: 'refused',
    detail: all.kind === 'too-many' ? `more than ${limit} processes to search` : '/proc cannot be listed',
  };
}

export interface TranslationOptions {
  cache?: TranslationCache;
  /** Prices searches on the daemon's main thread (search-budget.ts); absent: unpriced (tests). */
  budget?: SearchBudget;
  /** Candidate processes at most (default MAX_TRANSLATION_CANDIDATES). */
  limit?: number;
}

/** Candidates read per event-loop turn: a search never holds the main thread for long at once. */
export const SEARCH_SLICE = 32;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The daemon's pid for `targetPid` as `requester` (a process of `vm`) sees it. Reads /proc:
 * nothing once the requester's NSpid and position are kept in it, when it is in the daemon's
 * namespace, names itself, or names a process found before (cache: one pidfd check, and a walk
 * of its ancestry only once its membership verdict is older than the cache's memberTtlMs);
 * otherwise one NSpid read per candidate process, SEARCH_SLICE per event-loop turn, within the budget.
 * A promise only when it searches: every decision asks, and an async function's promise (and the
 * caller's then) cost ~0.5 KB of garbage each time.
 */
export function translateTargetPid(
  requester: Requester,
  vm: RegisteredVm,
  targetPid: number,
  options: TranslationOptions = {},
): TargetTranslation | Promise<TargetTranslation> {
  const own = requester.nsPids ?? readNsPid(requester.pid);
  if (own === null || (requester.nsPids === undefined && readStartTime(requester.pid) !== requester.startTime)) {
    return { kind: 'refused', detail: `the requester (pid ${requester.pid}) exited before its pid namespace was read` };
  }
  requester.nsPids ??= own;
  if (own.length <= daemonDepth()) return { kind: 'same-namespace' };
  const depth = own.length;
  // Between fork and exec libvirt's child names itself (getpid()).
  if (own[depth - 1] === targetPid)
    return { kind: 'translated', hostPid: requester.pid, startTime: requester.startTime };

  const position = requester.position ?? namespacePosition(requester.pid, requester.startTime);
  if (position === null)
    return {
      kind: 'refused',
      detail: `the pid namespace of the requester (pid ${requester.pid}) could not be told: it or an ancestor exited while it was read`,
    };
  requester.position ??= position;
  const where = `pid ${targetPid} of the requester's pid namespace (the requester is pid ${own[depth - 1]} there, ${requester.pid} here)`;
  const key = TranslationCache.key(position, targetPid);
  const cache = options.cache;
  const known = cache?.get(key);
  if (known !== undefined) {
    if (cache!.isMember(key, vm)) return { kind: 'translated', hostPid: known.hostPid, startTime: known.startTime };
    const verdict = inVm(known, vm, where);
    if (verdict.kind === 'translated') cache!.noteMember(key, vm);
    return verdict;
  }

  const refusal = options.budget?.refusal(vm.identity.uuid) ?? null;
  if (refusal !== null) return { kind: 'refused', detail: `${where} was not searched for: ${refusal}` };
  return search(vm, targetPid, options, { depth, position, where, key });
}

/** The search of /proc for the target, SEARCH_SLICE candidates per event-loop turn (the budget charged). */
async function search(
  vm: RegisteredVm,
  targetPid: number,
  options: TranslationOptions,
  at: { depth: number; position: NamespacePosition; where: string; key: string },
): Promise<TargetTranslation> {
  const { depth, position, where, key } = at;
  const cache = options.cache;
  let reads = 1; // the listing
  try {
    const listed = candidates(vm, options.limit ?? MAX_TRANSLATION_CANDIDATES);
    if (listed.kind === 'refused')
      return { kind: 'refused', detail: `${where} was not searched for: ${listed.detail}` };
    for (let i = 0; i < listed.pids.length; i += SEARCH_SLICE) {
      if (i > 0) await nextTurn();
      const slice = listed.pids.slice(i, i + SEARCH_SLICE);
      reads += slice.length;
      const found = searchSlice(slice, depth, targetPid, position);
      if (found === null) continue;
      const verdict = inVm(found, vm, where);
      if (cache !== undefined) {
        cache.put(key, found);
        if (verdict.kind === 'translated') cache.noteMember(key, vm);
      }
      return verdict;
    }
    const among = listed.where === '/proc' ? '' : ` among the processes of ${listed.where}`;
    return { kind: 'refused', detail: `${where} names no process${among} in that namespace` };
  } finally {
    options.budget?.charge(vm.identity.uuid, reads);
  }
}

/** The process among `pids` at `depth` whose pid there is `targetPid`, in `position`'s namespace. */
function searchSlice(
  pids: number[],
  depth: number,
  targetPid: number,
  position: NamespacePosition,
): { hostPid: number; startTime: number } | null {
  for (const pid of pids) {
    const nsPids = readNsPid(pid);
    if (nsPids === null || nsPids.length !== depth || nsPids[depth - 1] !== targetPid) continue;
    // At the requester's depth with the number sent: the one in the requester's namespace, if any.
    const candidate = namespacePosition(pid);
    if (candidate === null || candidate.nsPids[depth - 1] !== targetPid || candidate.nsPids.length !== depth) continue;
    if (candidate.top.pid !== position.top.pid || candidate.top.startTime !== position.top.startTime) continue;
    return { hostPid: pid, startTime: candidate.self.startTime };
  }
  return null;
}

function inVm(found: { hostPid: number; startTime: number }, vm: RegisteredVm, where: string): TargetTranslation {
  const verdict = checkMembership(found.hostPid, vm);
  if (verdict.member) return { kind: 'translated', ...found };
  return {
    kind: 'refused',
    detail: `${where} is pid ${found.hostPid} here, which is not inside ${vmName(vm)} (${verdict.reason})`,
  };
}
