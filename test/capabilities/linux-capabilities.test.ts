// The real set-memlock and query-vm-identity on real processes: prlimit through FFI, scoped by
// kernel-verified membership, checked against the kernel's own /proc/<pid>/limits.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { MEMLOCK_UNLIMITED } from '../../runtime/contract/types.ts';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { createLinuxCapabilities } from '../../runtime/capabilities/linux/index.ts';
import { getMemlock } from '../../runtime/os/prlimit.ts';
import { assertLinuxSupport } from '../../runtime/os/support.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { setMemlockInScope } from '../../runtime/capabilities/linux/set-memlock.ts';
import { pidMax } from '../../runtime/os/pid.ts';
import {
  bootTicks,
  deadPid,
  killAll,
  memlockFromProc,
  spawnShell,
  spawnShellAtPid,
  waitForChildren,
  waitForTickAfter,
} from '../identity/support/processes.ts';

const MiB = 1024n * 1024n;
const identity = {
  uuid: '3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b13',
  name: 'vm-a',
  id: 7,
  labels: [['vfio', 'true']] as Array<[string, string]>,
};

function vmRootedAt(pid: number): RegisteredVm {
  return { identity, anchor: { rootPid: pid, rootStartTime: readStartTime(pid)! } };
}

/** A VM: a launcher shell with a "qemu" child and a grandchild. */
async function spawnVm(): Promise<{ vm: RegisteredVm; root: number; child: number; grandchild: number }> {
  const root = spawnShell('sh -c "sleep 300 & wait" & wait');
  const [child] = await waitForChildren(root.pid, 1);
  const [grandchild] = await waitForChildren(child!, 1);
  return { vm: vmRootedAt(root.pid), root: root.pid, child: child!, grandchild: grandchild! };
}

describe('set-memlock', () => {
  it('lowers soft and hard limits of a process in the VM, as /proc/<pid>/limits shows', async () => {
    const { vm, child, grandchild } = await spawnVm();
    const caps = createLinuxCapabilities(vm);
    const start = memlockFromProc(grandchild);
    expect(start.hard).not.toBe(2n * MiB);

    // The limit before and the target's start time come back with the effect (for undo and audit).
    expect(caps.setMemlock(grandchild, 2n * MiB)).toEqual({
      ok: true,
      effect: { before: start, startTime: readStartTime(grandchild) },
    });
    expect(memlockFromProc(grandchild)).toEqual({ soft: 2n * MiB, hard: 2n * MiB });
    expect(caps.setMemlock(child, 4096n)).toMatchObject({ ok: true });
    expect(memlockFromProc(child)).toEqual({ soft: 4096n, hard: 4096n });
    expect(caps.setMemlock(child, 0n)).toMatchObject({ ok: true, effect: { before: { soft: 4096n, hard: 4096n } } });
    expect(memlockFromProc(child)).toEqual({ soft: 0n, hard: 0n });
  });

  it('gives not-permitted when raising above the hard limit (no CAP_SYS_RESOURCE here), limit unchanged', async () => {
    expect(assertLinuxSupport().canRaiseHardLimit).toBe(false);
    const { vm, child } = await spawnVm();
    const caps = createLinuxCapabilities(vm);
    expect(caps.setMemlock(child, 1n * MiB)).toMatchObject({ ok: true });
    const raise = caps.setMemlock(child, 64n * MiB);
    expect(raise).toMatchObject({ ok: false, error: 'not-permitted' });
    expect(raise.ok === false && raise.detail).toMatch(/EPERM.*CAP_SYS_RESOURCE/);
    // u64 max is RLIM_INFINITY: a raise like any other, not an invalid argument.
    expect(caps.setMemlock(child, MEMLOCK_UNLIMITED)).toMatchObject({ ok: false, error: 'not-permitted' });
    expect(memlockFromProc(child)).toEqual({ soft: 1n * MiB, hard: 1n * MiB });
  });

  it('refuses a target outside the VM with out-of-scope and leaves its limit alone', async () => {
    const { vm } = await spawnVm();
    const stranger = spawnShell('sleep 300');
    const before = memlockFromProc(stranger.pid);
    const caps = createLinuxCapabilities(vm);
    for (const pid of [stranger.pid, process.pid, 1]) {
      expect(caps.setMemlock(pid, 1024n), `pid ${pid}`).toMatchObject({ ok: false, error: 'out-of-scope' });
    }
    expect(memlockFromProc(stranger.pid)).toEqual(before);
  });

  it('gives no-such-process for a dead pid and invalid-argument for impossible ones', async () => {
    const { vm } = await spawnVm();
    const caps = createLinuxCapabilities(vm);
    expect(caps.setMemlock(await deadPid(), 1024n)).toMatchObject({ ok: false, error: 'no-such-process' });
    for (const pid of [0, -1, pidMax(), 0xffff_ffff, 1.5]) {
      expect(caps.setMemlock(pid, 1024n), `pid ${pid}`).toMatchObject({ ok: false, error: 'invalid-argument' });
    }
    // A thread id (here one of our own threads) is not a process: refused before any prlimit.
    const tid = readdirSync('/proc/self/task')
      .map(Number)
      .find((t) => t !== process.pid)!;
    expect(caps.setMemlock(tid, 1024n)).toMatchObject({
      ok: false,
      error: 'invalid-argument',
      detail: expect.stringMatching(/thread id/),
    });
    expect(caps.setMemlock(1, -1n)).toMatchObject({ ok: false, error: 'invalid-argument' });
    expect(caps.setMemlock(1, MEMLOCK_UNLIMITED + 1n)).toMatchObject({ ok: false, error: 'invalid-argument' });
  });

  it('refuses a process that reused the registered root pid, leaving its limit alone', async () => {
    let found: { vm: RegisteredVm; pid: number } | null = null;
    for (let attempt = 0; attempt < 40 && found === null; attempt++) {
      const a = spawnShell('sleep 300');
      const vm = vmRootedAt(a.pid);
      await killAll();
      await waitForTickAfter(vm.anchor.rootStartTime!); // a new clock tick, so start times differ
      const b = spawnShellAtPid(a.pid, 'sleep 300');
      if (b === a.pid) found = { vm, pid: b };
      else await killAll();
    }
    if (found === null) throw new Error('could not get the kernel to reuse a pid in 40 attempts');
    const before = memlockFromProc(found.pid);
    const caps = createLinuxCapabilities(found.vm);
    expect(caps.setMemlock(found.pid, 1024n)).toMatchObject({ ok: false, error: 'out-of-scope' });
    expect(caps.queryVmIdentity(found.pid)).toBeNull();
    expect(memlockFromProc(found.pid)).toEqual(before);
  });
});

describe('query-vm-identity', () => {
  it('answers with the scope identity only for members', async () => {
    const { vm, root, grandchild } = await spawnVm();
    const stranger = spawnShell('sleep 300');
    const caps = createLinuxCapabilities(vm);
    expect(caps.queryVmIdentity(root)).toEqual(identity);
    expect(caps.queryVmIdentity(grandchild)).toEqual(identity);
    expect(caps.queryVmIdentity(stranger.pid)).toBeNull();
    expect(caps.queryVmIdentity(await deadPid())).toBeNull();
    expect(caps.queryVmIdentity(0)).toBeNull();
    // The answer is a frozen copy, shared by later answers: a policy host cannot mutate the
    // registry, nor the next answer, through it.
    const answer = caps.queryVmIdentity(root)!;
    expect(answer).not.toBe(vm.identity);
    expect(createLinuxCapabilities(vm).queryVmIdentity(grandchild)).toBe(answer);
    expect(() => answer.labels.push(['x', 'y'])).toThrow(TypeError);
    expect(() => (answer.labels[0]![1] = 'false')).toThrow(TypeError);
    expect(() => (answer.name = 'other')).toThrow(TypeError);
    expect(vm.identity.labels).toEqual([['vfio', 'true']]);
    expect(caps.queryVmIdentity(root)).toEqual(identity);
  });
});

describe('platform support', () => {
  it('reports kernel, cgroup2 mount and privilege on this host', () => {
    const support = assertLinuxSupport();
    expect(support.kernelRelease).toMatch(/^\d+\.\d+/);
    expect(support.cgroup2?.mountPoint).toMatch(/^\/sys\/fs\/cgroup/);
    expect(getMemlock(process.pid)).toMatchObject({ ok: true });
  });
});

describe('pidfd sandwich', () => {
  it('reports no-such-process when the target is replaced between the check and prlimit', async () => {
    // Reproduce the race for real: after membership is verified, kill the target and have the
    // kernel give its pid to a new process before prlimit runs (ns_last_pid, retried).
    let reusedRace = false;
    for (let attempt = 0; attempt < 40 && !reusedRace; attempt++) {
      const { vm, grandchild } = await spawnVm();
      let replacement: number | null | undefined;
      const result = setMemlockInScope(vm, grandchild, 4096n, {
        beforeAct: () => {
          const started = readStartTime(grandchild)!;
          process.kill(grandchild, 'SIGKILL');
          // Synchronous (the capability is mid-call): spin until its parent shell reaped it, and
          // until the next clock tick, so the replacement's start time differs too. Bounded: a
          // shell that did not reap in time just costs this attempt.
          const until = performance.now() + 5_000;
          while (readStartTime(grandchild) !== null && performance.now() < until);
          while (bootTicks() <= started);
          replacement = spawnShellAtPid(grandchild, 'sleep 300');
        },
      });
      expect(result).toMatchObject({ ok: false, error: 'no-such-process' });
      expect(result.ok === false && result.detail).toMatch(/exited or was replaced/);
      reusedRace = replacement === grandchild;
      await killAll();
    }
    if (!reusedRace) throw new Error('could not get the kernel to reuse the pid in 40 attempts');
  });
});
