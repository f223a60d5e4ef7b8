// One evaluation's Capabilities keep the pidfd and verdict of each pid they checked, until
// release(): real processes, real pidfds (counted in /proc/self/fd), real prlimit.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { createLinuxCapabilities } from '../../runtime/capabilities/linux/index.ts';
import { MAX_KEPT_TARGETS } from '../../runtime/capabilities/linux/checked-targets.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import type { EffectSink } from '../../runtime/effects/effect-sink.ts';
import type { SetMemlockIntent } from '../../runtime/effects/effect-intent.ts';
import {
  killAll,
  memlockFromProc,
  spawnShell,
  spawnShellAtPid,
  waitForChildren,
  waitForReaped,
} from '../identity/support/processes.ts';

const identity = {
  uuid: '3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b13',
  name: 'vm-a',
  id: 7,
  labels: [['vfio', 'true']] as Array<[string, string]>,
};

function vmRootedAt(pid: number): RegisteredVm {
  return { identity, anchor: { rootPid: pid, rootStartTime: readStartTime(pid)! } };
}

/** Open file descriptors of this process (the listing's own dir fd is in every count alike). */
const openFds = (): number => readdirSync('/proc/self/fd').length;

/** A VM: a launcher shell with a "qemu" child and a grandchild. */
async function spawnVm(): Promise<{ vm: RegisteredVm; child: number; grandchild: number }> {
  const root = spawnShell('sh -c "sleep 300 & wait" & wait');
  const [child] = await waitForChildren(root.pid, 1);
  const [grandchild] = await waitForChildren(child!, 1);
  return { vm: vmRootedAt(root.pid), child: child!, grandchild: grandchild! };
}

describe('pidfds kept per evaluation', () => {
  it('query-vm-identity then set-memlock on one pid: one pidfd, kept until release()', async () => {
    const { vm, grandchild } = await spawnVm();
    const before = openFds();
    const caps = createLinuxCapabilities(vm);
    expect(caps.queryVmIdentity(grandchild)).toEqual(identity);
    expect(openFds()).toBe(before + 1);
    expect(caps.setMemlock(grandchild, 8192n)).toMatchObject({ ok: true });
    expect(memlockFromProc(grandchild)).toEqual({ soft: 8192n, hard: 8192n });
    expect(caps.queryVmIdentity(grandchild)).toEqual(identity);
    expect(openFds()).toBe(before + 1);

    caps.release!();
    expect(openFds()).toBe(before);
    caps.release!(); // idempotent
    expect(openFds()).toBe(before);
    // After release the capabilities still answer, and keep nothing.
    expect(caps.setMemlock(grandchild, 4096n)).toMatchObject({ ok: true });
    expect(memlockFromProc(grandchild)).toEqual({ soft: 4096n, hard: 4096n });
    expect(openFds()).toBe(before);
  });

  it('reuses the verdict for the same live process: a reparenting in between is the documented window', async () => {
    // The grandchild is a member when first checked; killing its parent reparents it out of the
    // VM's tree. Within the evaluation the pidfd proves it is the same process, so the verdict
    // holds (as it would between a check and prlimit); a new evaluation checks afresh.
    const { vm, child, grandchild } = await spawnVm();
    const caps = createLinuxCapabilities(vm);
    expect(caps.queryVmIdentity(grandchild)).toEqual(identity);
    process.kill(child, 'SIGKILL');
    await waitForReaped(child);
    expect(caps.setMemlock(grandchild, 8192n)).toMatchObject({ ok: true });
    caps.release!();
    const fresh = createLinuxCapabilities(vm);
    expect(fresh.setMemlock(grandchild, 4096n)).toMatchObject({ ok: false, error: 'out-of-scope' });
    expect(fresh.queryVmIdentity(grandchild)).toBeNull();
    fresh.release!();
    expect(memlockFromProc(grandchild)).toEqual({ soft: 8192n, hard: 8192n });
  });

  it('answers no-such-process, not a kept ok, when the target exits between two calls', async () => {
    const { vm, grandchild } = await spawnVm();
    const before = openFds();
    const caps = createLinuxCapabilities(vm);
    expect(caps.queryVmIdentity(grandchild)).toEqual(identity);
    process.kill(grandchild, 'SIGKILL');
    await waitForReaped(grandchild);
    expect(caps.setMemlock(grandchild, 4096n)).toMatchObject({ ok: false, error: 'no-such-process' });
    expect(caps.queryVmIdentity(grandchild)).toBeNull();
    expect(openFds()).toBe(before); // the dead process's pidfd is closed as soon as it is found dead
    caps.release!();
    expect(openFds()).toBe(before);
  });

  it('checks a process that reused a kept pid afresh (out-of-scope), never from the kept verdict', async () => {
    let reused = false;
    for (let attempt = 0; attempt < 40 && !reused; attempt++) {
      const { vm, grandchild } = await spawnVm();
      const caps = createLinuxCapabilities(vm);
      expect(caps.queryVmIdentity(grandchild)).toEqual(identity);
      process.kill(grandchild, 'SIGKILL');
      await waitForReaped(grandchild);
      const stranger = spawnShellAtPid(grandchild, 'sleep 300'); // outside the VM
      if (stranger === grandchild) {
        reused = true;
        const before = memlockFromProc(stranger);
        expect(caps.setMemlock(stranger, 4096n)).toMatchObject({ ok: false, error: 'out-of-scope' });
        expect(caps.queryVmIdentity(stranger)).toBeNull();
        expect(memlockFromProc(stranger)).toEqual(before);
      }
      caps.release!();
      await killAll();
    }
    if (!reused) throw new Error('could not get the kernel to reuse the pid in 40 attempts');
  });

  it(`keeps at most ${MAX_KEPT_TARGETS} pidfds; calls beyond that still work, unkept`, async () => {
    const count = MAX_KEPT_TARGETS + 4;
    const root = spawnShell(`for i in $(seq ${count}); do sleep 300 & done; wait`);
    const members = await waitForChildren(root.pid, count);
    const vm = vmRootedAt(root.pid);
    const before = openFds();
    const caps = createLinuxCapabilities(vm);
    for (const pid of members) expect(caps.queryVmIdentity(pid), `pid ${pid}`).toEqual(identity);
    expect(openFds()).toBe(before + MAX_KEPT_TARGETS);
    for (const pid of members) expect(caps.setMemlock(pid, 4096n), `pid ${pid}`).toMatchObject({ ok: true });
    for (const pid of members) expect(memlockFromProc(pid), `pid ${pid}`).toEqual({ soft: 4096n, hard: 4096n });
    expect(openFds()).toBe(before + MAX_KEPT_TARGETS);
    caps.release!();
    expect(openFds()).toBe(before);

    const none = createLinuxCapabilities(vm, { maxKeptTargets: 0 });
    expect(none.queryVmIdentity(members[0]!)).toEqual(identity);
    expect(openFds()).toBe(before);
  });

  it('keeps out-of-scope verdicts too, until release()', async () => {
    const { vm } = await spawnVm();
    const stranger = spawnShell('sleep 300');
    const before = openFds();
    const caps = createLinuxCapabilities(vm);
    expect(caps.queryVmIdentity(stranger.pid)).toBeNull();
    expect(caps.setMemlock(stranger.pid, 4096n)).toMatchObject({
      ok: false,
      error: 'out-of-scope',
      detail: expect.stringMatching(/not-descendant/),
    });
    expect(openFds()).toBe(before + 1);
    caps.release!();
    expect(openFds()).toBe(before);
  });
});

describe("a target pinned by the daemon (translated from the requester's pid namespace)", () => {
  // The pin names the process the translation found by pid and start time. A pin with another
  // start time stands for "that process exited and a process of the VM reused its pid".
  it('acts on the pinned pid only while the pinned process holds it: fresh, kept and recent checks alike', async () => {
    const { vm, grandchild } = await spawnVm();
    const startTime = readStartTime(grandchild)!;
    const before = memlockFromProc(grandchild);
    const stale = { pid: grandchild, startTime: startTime - 1 };

    // A broken pin records no intent: nothing is about to act.
    const staleIntents: SetMemlockIntent[] = [];
    const staleEffects: EffectSink = {
      intend: (i) => (staleIntents.push(i), { ledger: -1, journal: -1 }),
      done: () => {},
      queried: () => {},
    };
    const fresh = createLinuxCapabilities(vm, { pinned: stale, effects: staleEffects });
    expect(fresh.setMemlock(grandchild, 4096n)).toMatchObject({ ok: false, error: 'no-such-process' });
    expect(staleIntents).toEqual([]);
    expect(fresh.queryVmIdentity(grandchild)).toBeNull();
    fresh.release!();

    // A verdict kept by another evaluation of this thread (recent-members.ts) is not the pinned process either.
    const earlier = createLinuxCapabilities(vm, { recentMembersMs: 60_000 });
    expect(earlier.queryVmIdentity(grandchild)).toEqual(identity);
    earlier.release!();
    const later = createLinuxCapabilities(vm, { recentMembersMs: 60_000, pinned: stale });
    expect(later.setMemlock(grandchild, 4096n)).toMatchObject({ ok: false, error: 'no-such-process' });
    later.release!();
    expect(memlockFromProc(grandchild)).toEqual(before);

    // Other pids are not affected by the pin, and the right pin acts.
    // Its intent (effects/) names the pinned process: the daemon's pid and the pin's start time.
    const intents: SetMemlockIntent[] = [];
    const effects: EffectSink = {
      intend: (i) => (intents.push(i), { ledger: -1, journal: -1 }),
      done: () => {},
      queried: () => {},
    };
    const pinned = createLinuxCapabilities(vm, { pinned: { pid: grandchild, startTime }, effects });
    expect(pinned.queryVmIdentity(grandchild)).toEqual(identity); // kept
    expect(pinned.setMemlock(grandchild, 4096n)).toEqual({ ok: true, effect: { before, startTime } });
    pinned.release!();
    expect(intents).toEqual([{ op: 'set-memlock', pid: grandchild, startTime, bytes: 4096n, before }]);
    expect(memlockFromProc(grandchild)).toEqual({ soft: 4096n, hard: 4096n });
  });
});
