// Members found by one evaluation are reused by the next ones for a bounded time, only while the
// pidfd proves the pid still names the same process; refusals are never reused. Real processes,
// real pidfds, real prlimit.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { createLinuxCapabilities } from '../../runtime/capabilities/linux/index.ts';
import { RecentMembers } from '../../runtime/capabilities/linux/recent-members.ts';
import { checkTarget } from '../../runtime/capabilities/linux/checked-target.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { libc, RLIMIT_MEMLOCK } from '../../runtime/os/libc.ts';
import { undoSetMemlock } from '../../runtime/capabilities/linux/undo-memlock.ts';
import { memlockFromProc, spawnShell, waitForChildren, waitForReaped } from '../identity/support/processes.ts';

const identity = {
  uuid: '5d1c7a42-0b8e-4f3a-9c61-7e2d4b9a0c55',
  name: 'vm-r',
  id: 9,
  labels: [] as Array<[string, string]>,
};
const openFds = (): number => readdirSync('/proc/self/fd').length;

async function spawnVm(): Promise<{ vm: RegisteredVm; child: number; grandchild: number }> {
  const root = spawnShell('sh -c "sleep 300 & wait" & wait');
  const [child] = await waitForChildren(root.pid, 1);
  const [grandchild] = await waitForChildren(child!, 1);
  return {
    vm: { identity, anchor: { rootPid: root.pid, rootStartTime: readStartTime(root.pid)! } },
    child: child!,
    grandchild: grandchild!,
  };
}

function checked(vm: RegisteredVm, pid: number) {
  const c = checkTarget(vm, pid);
  if (!c.ok) throw new Error(`check of ${pid} failed: ${c.failure.kind}`);
  return c.target;
}

describe('recent members across evaluations', () => {
  it('a later evaluation reuses the member verdict: no new pidfd, and the reparented process still counts until the entry expires', async () => {
    const { vm, child, grandchild } = await spawnVm();
    const before = openFds();
    const first = createLinuxCapabilities(vm, { recentMembersMs: 60_000 });
    expect(first.queryVmIdentity(grandchild)).toEqual(identity);
    first.release!();
    expect(openFds()).toBe(before + 1); // the thread's cache holds it, not the evaluation

    // Reparent the grandchild out of the VM's tree: a fresh check now refuses it...
    process.kill(child, 'SIGKILL');
    await waitForReaped(child);
    const fresh = createLinuxCapabilities(vm);
    expect(fresh.queryVmIdentity(grandchild)).toBeNull();
    fresh.release!();
    // ...while within its time the kept verdict, pinned to the same process, is reused.
    const second = createLinuxCapabilities(vm, { recentMembersMs: 60_000 });
    expect(second.setMemlock(grandchild, 8192n)).toMatchObject({ ok: true });
    expect(memlockFromProc(grandchild)).toEqual({ soft: 8192n, hard: 8192n });
    second.release!();
    expect(openFds()).toBe(before + 1);
  });

  it('an expired entry is checked afresh (and its pidfd closed)', () => {
    let now = 1_000;
    const cache = new RecentMembers(8, () => now);
    const root = spawnShell('sleep 300');
    const vm: RegisteredVm = { identity, anchor: { rootPid: root.pid, rootStartTime: readStartTime(root.pid)! } };
    const before = openFds();
    expect(cache.put(vm, root.pid, checked(vm, root.pid), 500)).toBe(true);
    expect(cache.get(vm, root.pid)).toBeDefined();
    now += 499;
    expect(cache.get(vm, root.pid)).toBeDefined();
    now += 1;
    expect(cache.get(vm, root.pid)).toBeUndefined();
    expect(openFds()).toBe(before);
  });

  it('an entry whose process exited is never reused, even when its pid comes back', async () => {
    const cache = new RecentMembers();
    const { vm, grandchild } = await spawnVm();
    expect(cache.put(vm, grandchild, checked(vm, grandchild), 60_000)).toBe(true);
    process.kill(grandchild, 'SIGKILL');
    await waitForReaped(grandchild);
    expect(cache.get(vm, grandchild)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps members only, per VM anchor, and at most its capacity of pidfds', async () => {
    const cache = new RecentMembers(2);
    const { vm, child, grandchild } = await spawnVm();
    const outsider = spawnShell('sleep 300');
    const before = openFds();
    const refused = checked(vm, outsider.pid);
    expect(refused.verdict.member).toBe(false);
    expect(cache.put(vm, outsider.pid, refused, 60_000)).toBe(false);
    // Another registration (another anchor) never sees this VM's entries.
    const other: RegisteredVm = {
      identity: { ...identity, uuid: 'a4f0c1d2-3b4e-4f5a-8b6c-7d8e9f0a1b2c' },
      anchor: { rootPid: outsider.pid, rootStartTime: readStartTime(outsider.pid)! },
    };
    expect(cache.put(vm, child, checked(vm, child), 60_000)).toBe(true);
    expect(cache.get(other, child)).toBeUndefined();
    expect(cache.put(vm, grandchild, checked(vm, grandchild), 60_000)).toBe(true);
    expect(cache.put(vm, vm.anchor.rootPid!, checked(vm, vm.anchor.rootPid!), 60_000)).toBe(true);
    expect(cache.size).toBe(2);
    expect(cache.get(vm, child)).toBeUndefined(); // the oldest went first
    cache.clear();
    // Only the refused target's pidfd (never cached) is still open: ours to close.
    expect(openFds()).toBe(before + 1);
  });
});

describe('the pidfd a recent member keeps, as proof of who a pid names', () => {
  it("is found by pid and start time, past the verdict's expiry, and never for another start time or a process gone", async () => {
    let now = 1_000;
    const cache = new RecentMembers(8, () => now);
    const { vm, grandchild } = await spawnVm();
    const target = checked(vm, grandchild);
    expect(cache.put(vm, grandchild, target, 500)).toBe(true);
    expect(cache.pidfdOf(grandchild, target.startTime)).toBe(target.pidfd);
    expect(cache.pidfdOf(grandchild, target.startTime + 1)).toBeUndefined();
    expect(cache.pidfdOf(vm.anchor.rootPid!, target.startTime)).toBeUndefined();
    now += 10_000; // the membership verdict expired; who the pid names did not change
    expect(cache.pidfdOf(grandchild, target.startTime)).toBe(target.pidfd);
    process.kill(grandchild, 'SIGKILL');
    await waitForReaped(grandchild);
    expect(cache.pidfdOf(grandchild, target.startTime)).toBeUndefined();
    cache.clear();
  });

  it('lets an undo skip the check of the process, and an effect of another start time is still not undone', async () => {
    const MiB = 1024n * 1024n;
    const { vm, grandchild } = await spawnVm();
    // Soft below hard: the policy's raise of soft can be put back without CAP_SYS_RESOURCE.
    const lowered = libc().prlimit(grandchild, RLIMIT_MEMLOCK, { soft: MiB, hard: 8n * MiB });
    if (!lowered.ok) throw new Error(`prlimit failed: ${lowered.errno}`);
    const before = openFds();
    const caps = createLinuxCapabilities(vm, { recentMembersMs: 60_000 });
    const set = caps.setMemlock(grandchild, 8n * MiB);
    caps.release!();
    if (!set.ok || set.effect === undefined) throw new Error(`set-memlock failed: ${JSON.stringify(set)}`);
    expect(openFds()).toBe(before + 1); // this thread's recent members keep the target's pidfd
    const expected = { soft: 8n * MiB, hard: 8n * MiB };
    // Named by another start time: another process, whatever pidfd is kept for this pid.
    const stranger = { ...set.effect, startTime: set.effect.startTime - 1 };
    expect(undoSetMemlock({ pid: grandchild, expected, effect: stranger })).toBe(
      'not undone: the process exited (its pid now names another one)',
    );
    expect(memlockFromProc(grandchild)).toEqual(expected);
    expect(undoSetMemlock({ pid: grandchild, expected, effect: set.effect })).toBe('undone');
    expect(memlockFromProc(grandchild)).toEqual({ soft: MiB, hard: 8n * MiB });
    expect(openFds()).toBe(before + 1);
  });
});
