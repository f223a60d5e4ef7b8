// checkAnchor on real process trees (the admin API's 409/422 are in test/security/registration.test.ts):
// start times decide whether a pid anchor still holds anything, an update is not compared with
// itself, and kernel threads are told from their flags.
import { describe, expect, it } from 'vitest';
import { checkAnchor } from '../../runtime/identity/anchor-sanity.ts';
import { isKernelThread, parseStatFlags } from '../../runtime/os/kernel-thread.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { spawnShell, waitForChildren } from './support/processes.ts';

const identity = (n: number) => ({
  uuid: `3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b2${n}`,
  name: `vm-${n}`,
  id: n,
  labels: [] as Array<[string, string]>,
});
const rootedAt = (pid: number, n: number, startTime = readStartTime(pid)!): RegisteredVm => ({
  identity: identity(n),
  anchor: { rootPid: pid, rootStartTime: startTime },
});

describe('checkAnchor', () => {
  it('treats a pid anchor whose start time no longer matches (the pid was reused) as holding nothing', async () => {
    const root = spawnShell('sleep 300 & wait');
    const [child] = await waitForChildren(root.pid, 1);
    // A VM registered at this pid when it named an earlier process: same pid, older start time.
    const stale = rootedAt(root.pid, 1, readStartTime(root.pid)! - 1);
    expect(checkAnchor(rootedAt(root.pid, 2), [stale])).toBeNull();
    expect(checkAnchor(rootedAt(child!, 3), [stale])).toBeNull();
    // The same registry with the live start time: both are inside it.
    const live = rootedAt(root.pid, 1);
    expect(checkAnchor(rootedAt(child!, 3), [live])).toMatchObject({ kind: 'conflict', vm: { name: 'vm-1' } });
    expect(checkAnchor(rootedAt(root.pid, 2), [live])).toMatchObject({ kind: 'conflict', vm: { name: 'vm-1' } });
  });

  it('does not compare a VM with its own registration (update), only with the others', async () => {
    const root = spawnShell('sleep 300 & wait');
    const [child] = await waitForChildren(root.pid, 1);
    const self = rootedAt(root.pid, 1);
    expect(checkAnchor({ ...rootedAt(child!, 9), identity: self.identity }, [self])).toBeNull();
    const other = rootedAt(root.pid, 2);
    expect(checkAnchor({ ...rootedAt(child!, 9), identity: self.identity }, [self, other])).toMatchObject({
      kind: 'conflict',
      vm: { name: 'vm-2' },
    });
  });

  it('refuses an anchor at an ancestor of the given daemon pid, and accepts a sibling tree', async () => {
    const root = spawnShell('sleep 300 & wait');
    const [child] = await waitForChildren(root.pid, 1);
    // Play that the child is the daemon: its parent is then an ancestor of the daemon.
    expect(checkAnchor(rootedAt(root.pid, 1), [], child)).toMatchObject({
      kind: 'invalid-anchor',
      message: expect.stringMatching(/ancestor of the capgate daemon/),
    });
    expect(checkAnchor(rootedAt(child!, 1), [], child)).toMatchObject({
      kind: 'invalid-anchor',
      message: expect.stringMatching(/the capgate daemon itself/),
    });
    const sibling = spawnShell('sleep 300');
    expect(checkAnchor(rootedAt(sibling.pid, 1), [], child)).toBeNull();
  });
});

describe('kernel threads', () => {
  it('are told from the PF_KTHREAD flag, whatever comm says', () => {
    expect(parseStatFlags('2 (kthreadd) S 0 0 0 0 -1 2129984 0 0')).toBe(2129984);
    expect(parseStatFlags('77 (evil) S 0 0 (x) S 1 1 1 0 -1 4194560 0 0')).toBe(4194560); // comm with ") S"
    expect(parseStatFlags('garbage')).toBeNull();
    expect(isKernelThread(process.pid)).toBe(false);
    expect(isKernelThread(99_999_999)).toBe(false);
  });
});
