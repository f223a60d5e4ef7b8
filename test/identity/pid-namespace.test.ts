// Target pids sent from a pid namespace below the daemon's, translated on real process trees in
// real pid namespaces (unshare --pid --fork): the number the requester sees, never the same
// number in the daemon's namespace, and only a process of the requester's own namespace and VM.
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { namespacePosition } from '../../runtime/identity/pid-namespace-top.ts';
import { parseNsPid, readNsPid } from '../../runtime/os/proc-nspid.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { listProcPids } from '../../runtime/os/proc-pids.ts';
import { SearchBudget } from '../../runtime/identity/search-budget.ts';
import {
  MAX_TRANSLATION_CANDIDATES,
  translateTargetPid,
  TranslationCache,
  type Requester,
  type TargetTranslation,
} from '../../runtime/identity/target-translation.ts';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { killAll, spawnShell, waitForChildren, waitForReaped } from './support/processes.ts';

afterEach(killAll);

const unshare = spawnSync('unshare', ['--pid', '--fork', 'true'], { encoding: 'utf8' });
const canUnsharePid = unshare.status === 0;
if (!canUnsharePid)
  console.log(
    `SKIP pid namespace translation: unshare --pid is not permitted here (${(unshare.stderr || unshare.error?.message || '').trim()})`,
  );

const identity = (n: number) => ({
  uuid: `3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0c3${n}`,
  name: `vm-${n}`,
  id: n,
  labels: [] as Array<[string, string]>,
});
const rootedAt = (pid: number, n = 1): RegisteredVm => ({
  identity: identity(n),
  anchor: { rootPid: pid, rootStartTime: readStartTime(pid)! },
});
const requester = (pid: number) => ({ pid, startTime: readStartTime(pid)! });

/** A process whose NSpid has `depth` entries, the last one `nsPid`, among `pids`. */
function withNsPid(pids: number[], nsPid: number, depth = 2): number {
  const found = pids.find((p) => {
    const ns = readNsPid(p);
    return ns?.length === depth && ns[depth - 1] === nsPid;
  });
  if (found === undefined) throw new Error(`no process with pid ${nsPid} at depth ${depth} among ${pids.join(', ')}`);
  return found;
}

/**
 * sh (host) -> unshare -> sh (pid 1 of a new namespace) -> sleep (2), sleep (3).
 * Returns the host pids: root (the outer sh), init (the namespace's sh) and the two sleeps.
 */
async function namespaceTree(): Promise<{ root: number; unshare: number; init: number; two: number; three: number }> {
  const root = spawnShell("unshare --pid --fork sh -c 'sleep 300 & sleep 300 & wait' & wait");
  const [unshareP] = await waitForChildren(root.pid, 1);
  const [init] = await waitForChildren(unshareP!, 1);
  const sleeps = await waitForChildren(init!, 2);
  return { root: root.pid, unshare: unshareP!, init: init!, two: withNsPid(sleeps, 2), three: withNsPid(sleeps, 3) };
}

describe('NSpid', () => {
  it('parses the pid list of /proc/<pid>/status and refuses malformed ones', () => {
    expect(parseNsPid('Name:\tsh\nNSpid:\t4242\t7\t1\nNSpgid:\t1\n')).toEqual([4242, 7, 1]);
    expect(parseNsPid('NSpid:\t12\n')).toEqual([12]);
    expect(parseNsPid('Name:\tsh\n')).toBeNull();
    expect(parseNsPid('NSpid:\t\n')).toBeNull();
    expect(parseNsPid('NSpid:\t12 -1\n')).toBeNull();
    expect(parseNsPid('NSpid:\t012\n')).toBeNull();
    expect(parseNsPid(`NSpid:\t${Array.from({ length: 40 }, () => '1').join('\t')}\n`)).toBeNull();
  });

  it("reads one entry for a process of the daemon's namespace", () => {
    expect(readNsPid(process.pid)).toEqual([process.pid]);
  });
});

describe("a requester of the daemon's own namespace", () => {
  it('has its NSpid read once per Requester, pinned by its start time, and kept', async () => {
    const child = spawnShell('sleep 300');
    const vm = rootedAt(child.pid);
    // Pinned to another process (a start time that is not this one's): refused, nothing kept.
    const stale: Requester = { pid: child.pid, startTime: readStartTime(child.pid)! - 1 };
    expect(await translateTargetPid(stale, vm, 1)).toMatchObject({ kind: 'refused', detail: /exited/ });
    expect(stale.nsPids).toBeUndefined();
    const r: Requester = requester(child.pid);
    expect(await translateTargetPid(r, vm, 1)).toEqual({ kind: 'same-namespace' });
    expect(r.nsPids).toEqual([child.pid]);
    // Kept: the next request of the connection reads nothing. Whether the process is still the
    // one that connected is the caller's check (the pipeline's pidfd), made before it asks: so
    // a process gone since is still answered from what was read while it was pinned.
    child.kill('SIGKILL');
    await waitForReaped(child.pid);
    expect(await translateTargetPid(r, vm, 1)).toEqual({ kind: 'same-namespace' });
    expect(await translateTargetPid(requester(process.pid), vm, 1)).toEqual({ kind: 'same-namespace' });
  });
});

describe.skipIf(!canUnsharePid)('pid namespaces of real processes', () => {
  it('places processes forked inside a namespace under its init, and the init under itself', async () => {
    const t = await namespaceTree();
    const init = namespacePosition(t.init)!;
    expect(init.nsPids).toEqual([t.init, 1]);
    expect(init.top).toEqual({ pid: t.init, startTime: readStartTime(t.init) });
    expect(namespacePosition(t.two)!.top).toEqual(init.top);
    expect(namespacePosition(t.three)!.top).toEqual(init.top);
    // The unshare process is in the daemon's namespace: its top is the host's init.
    expect(namespacePosition(t.unshare)!.top.pid).toBe(1);
    // Pinned by a start time that is not the process's: not told.
    expect(namespacePosition(t.two, readStartTime(t.two)! - 1)).toBeNull();
  });

  it("translates the number the requester sees into the daemon's pid, pinned by start time", async () => {
    const t = await namespaceTree();
    const vm = rootedAt(t.root);
    expect(await translateTargetPid(requester(t.init), vm, 2)).toEqual({
      kind: 'translated',
      hostPid: t.two,
      startTime: readStartTime(t.two),
    });
    expect(await translateTargetPid(requester(t.init), vm, 3)).toEqual({
      kind: 'translated',
      hostPid: t.three,
      startTime: readStartTime(t.three),
    });
    // The requester naming itself (libvirt's child between fork and exec) needs no search.
    expect(await translateTargetPid(requester(t.init), vm, 1)).toEqual({
      kind: 'translated',
      hostPid: t.init,
      startTime: readStartTime(t.init),
    });
    expect(await translateTargetPid(requester(t.two), vm, 2)).toEqual({
      kind: 'translated',
      hostPid: t.two,
      startTime: readStartTime(t.two),
    });
    // A requester of the daemon's namespace: its numbers mean what they say.
    expect(await translateTargetPid(requester(t.unshare), vm, t.two)).toEqual({ kind: 'same-namespace' });
  });

  it("refuses a number that names nothing in the requester's namespace, even where it names a process of the VM in the daemon's", async () => {
    const t = await namespaceTree();
    const vm = rootedAt(t.root);
    const refused = (r: TargetTranslation): string =>
      r.kind === 'refused' ? r.detail : `not refused: ${JSON.stringify(r)}`;
    expect(refused(await translateTargetPid(requester(t.init), vm, 4))).toMatch(
      /pid 4 of the requester's pid namespace .* names no process in that namespace/,
    );
    // Host pids of the VM's own processes: outside the namespace (root, unshare) or inside it
    // (the sleeps): as numbers of the requester's namespace they name nothing.
    for (const hostPid of [t.root, t.unshare, t.two, t.three]) {
      expect(refused(await translateTargetPid(requester(t.init), vm, hostPid))).toMatch(
        new RegExp(`pid ${hostPid} of the requester's pid namespace .* names no process`),
      );
    }
  });

  it("refuses a process of the requester's namespace that is outside its VM", async () => {
    const t = await namespaceTree();
    // The VM is the first sleep alone: its sibling and the namespace's init are not in it.
    const vm = rootedAt(t.two);
    const r3 = await translateTargetPid(requester(t.two), vm, 3);
    expect(r3).toMatchObject({
      kind: 'refused',
      detail: expect.stringMatching(
        new RegExp(`is pid ${t.three} here, which is not inside VM "vm-1".*not-descendant`),
      ),
    });
    expect(await translateTargetPid(requester(t.two), vm, 1)).toMatchObject({
      kind: 'refused',
      detail: expect.stringMatching(new RegExp(`is pid ${t.init} here, which is not inside`)),
    });
  });

  it('tells sibling namespaces of one VM apart: each requester gets its own pid 2', async () => {
    const root = spawnShell(
      "unshare --pid --fork sh -c 'sleep 300 & wait' & unshare --pid --fork sh -c 'sleep 300 & wait' & wait",
    );
    const unshares = await waitForChildren(root.pid, 2);
    const inits = await Promise.all(unshares.map(async (u) => (await waitForChildren(u, 1))[0]!));
    const twos = await Promise.all(inits.map(async (i) => (await waitForChildren(i, 1))[0]!));
    expect(twos.map((p) => readNsPid(p)![1])).toEqual([2, 2]);
    const vm = rootedAt(root.pid);
    for (const i of [0, 1]) {
      expect(await translateTargetPid(requester(inits[i]!), vm, 2)).toMatchObject({
        kind: 'translated',
        hostPid: twos[i],
      });
    }
  });

  it('does not follow a cached translation to a process that reused the pid, and keeps a live one', async () => {
    const t = await namespaceTree();
    const vm = rootedAt(t.root);
    const cache = new TranslationCache();
    expect(await translateTargetPid(requester(t.init), vm, 2, { cache })).toMatchObject({
      kind: 'translated',
      hostPid: t.two,
    });
    const position = namespacePosition(t.init)!;
    const key = TranslationCache.key(position, 2);
    expect(cache.get(key)).toEqual({ hostPid: t.two, startTime: readStartTime(t.two) });
    // Searching is not needed for a cached, live entry: even with nothing to search it answers.
    expect(await translateTargetPid(requester(t.init), vm, 2, { cache, limit: 0 })).toMatchObject({
      kind: 'translated',
      hostPid: t.two,
    });
    // An entry whose process is not the one under the pid any more is dropped (here: never kept).
    cache.put(key, { hostPid: t.two, startTime: readStartTime(t.two)! - 1 });
    expect(cache.get(key)).toBeUndefined();
    expect(await translateTargetPid(requester(t.init), vm, 2, { cache, limit: 0 })).toMatchObject({
      kind: 'refused',
      detail: expect.stringMatching(/more than 0 processes to search/),
    });
    cache.close();
  });

  it('keeps a found target through a pidfd: dropped once it exits, never kept for another process', async () => {
    const t = await namespaceTree();
    const vm = rootedAt(t.root);
    const cache = new TranslationCache();
    try {
      const r = requester(t.init);
      expect(await translateTargetPid(r, vm, 3, { cache })).toMatchObject({ kind: 'translated', hostPid: t.three });
      const key = TranslationCache.key(namespacePosition(t.init)!, 3);
      // Kept only for the process found: the same pid with another start time is not kept at all.
      cache.put(TranslationCache.key(namespacePosition(t.init)!, 2), { hostPid: t.two, startTime: 1 });
      expect(cache.size).toBe(1);
      process.kill(t.three, 'SIGKILL');
      await waitForReaped(t.three);
      expect(cache.get(key)).toBeUndefined();
      expect(cache.size).toBe(0);
      expect(await translateTargetPid(r, vm, 3, { cache })).toMatchObject({ kind: 'refused' });
    } finally {
      cache.close();
    }
  });

  it("reuses a found target's membership for memberTtlMs only, then walks its ancestry again", async () => {
    const t = await namespaceTree();
    const vm = rootedAt(t.root);
    let now = 1_000;
    const cache = new TranslationCache(8, 500, () => now);
    try {
      const r = requester(t.init);
      expect(await translateTargetPid(r, vm, 2, { cache })).toMatchObject({ kind: 'translated', hostPid: t.two });
      // The namespace leaves the VM's tree (its init is reparented away from the VM's root).
      process.kill(t.unshare, 'SIGKILL');
      await waitForReaped(t.unshare);
      now += 499;
      expect(await translateTargetPid(r, vm, 2, { cache })).toMatchObject({ kind: 'translated', hostPid: t.two });
      now += 1;
      expect(await translateTargetPid(r, vm, 2, { cache })).toMatchObject({
        kind: 'refused',
        detail: expect.stringMatching(/not inside/),
      });
      // A refusal is never reused: it is walked again, and again refused.
      expect(await translateTargetPid(r, vm, 2, { cache })).toMatchObject({ kind: 'refused' });
    } finally {
      cache.close();
    }
  });

  it("keeps the requester's namespace position: read once per Requester, pinned by its start time", async () => {
    const t = await namespaceTree();
    const vm = rootedAt(t.root);
    const r: Requester = requester(t.init);
    expect(await translateTargetPid(r, vm, 2)).toMatchObject({ kind: 'translated', hostPid: t.two });
    expect(r.position).toEqual(namespacePosition(t.init));
    const stale: Requester = { pid: t.init, startTime: readStartTime(t.init)! - 1 };
    expect(await translateTargetPid(stale, vm, 2)).toMatchObject({ kind: 'refused' });
    expect(stale.position).toBeUndefined();
  });

  it('refuses a requester that is not the process that connected (start time differs)', async () => {
    const t = await namespaceTree();
    expect(
      await translateTargetPid({ pid: t.init, startTime: readStartTime(t.init)! - 1 }, rootedAt(t.root), 2),
    ).toMatchObject({ kind: 'refused', detail: expect.stringMatching(/exited/) });
  });
});

describe('the price of a search', () => {
  it('a VM that spent its bucket is refused until it refills; all VMs together have a bucket too', () => {
    let now = 0;
    const budget = new SearchBudget({ capacity: 100, refillPerS: 20 }, { capacity: 150, refillPerS: 100 }, () => now);
    expect(budget.refusal('a')).toBeNull();
    budget.charge('a', 60);
    expect(budget.refusal('a')).toBeNull(); // 40 reads left
    budget.charge('a', 60);
    expect(budget.refusal('a')).toMatch(
      /this VM's requests made the daemon read more than 100 processes of \/proc lately/,
    );
    expect(budget.refusal('b')).toBeNull(); // another VM is not refused for a's searches…
    budget.charge('b', 40);
    expect(budget.refusal('c')).toMatch(/read more than 150 processes of \/proc for all VMs' targets lately/); // …until all of them read 160 > 150
    now += 2000; // a: -20 + 40; all VMs: -10 + 200, back to full
    expect(budget.refusal('a')).toBeNull();
    expect(budget.refusal('c')).toBeNull();
  });
});

describe.skipIf(!canUnsharePid)("a search on the daemon's main thread", () => {
  it('yields to the event loop between slices of candidates, and is refused once the budget is spent', async () => {
    const t = await namespaceTree();
    const vm = rootedAt(t.root);
    expect(listProcPids(MAX_TRANSLATION_CANDIDATES)).toMatchObject({
      kind: 'listed',
      pids: expect.arrayContaining([t.init]),
    });
    let turned = false;
    setImmediate(() => (turned = true));
    // A number that names nothing: every process of /proc is read, SEARCH_SLICE per turn.
    const budget = new SearchBudget({ capacity: 1e9, refillPerS: 0 }, { capacity: 1e9, refillPerS: 0 });
    expect(await translateTargetPid(requester(t.init), vm, 99, { budget })).toMatchObject({ kind: 'refused' });
    expect(turned).toBe(true);
    // A search is charged the processes it read: one search empties a bucket of 10.
    const small = new SearchBudget({ capacity: 10, refillPerS: 0 }, { capacity: 1e9, refillPerS: 0 });
    expect(await translateTargetPid(requester(t.init), vm, 99, { budget: small })).toMatchObject({
      kind: 'refused',
      detail: expect.stringMatching(/names no process/),
    });
    expect(small.refusal(vm.identity.uuid)).toMatch(/read more than 10 processes/);
    // A budget already spent: no search at all, and the reason says why.
    const spent = new SearchBudget({ capacity: 1, refillPerS: 0 }, { capacity: 1e9, refillPerS: 0 });
    spent.charge(vm.identity.uuid, 2);
    expect(await translateTargetPid(requester(t.init), vm, 2, { budget: spent })).toMatchObject({
      kind: 'refused',
      detail: expect.stringMatching(
        /was not searched for: this VM's requests made the daemon read more than 1 processes/,
      ),
    });
    // What needs no search is not priced: the requester naming itself.
    expect(await translateTargetPid(requester(t.init), vm, 1, { budget: spent })).toMatchObject({
      kind: 'translated',
      hostPid: t.init,
    });
  });
});
