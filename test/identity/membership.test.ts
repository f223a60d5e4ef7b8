// Membership of real processes in registered VMs: root-pid trees, reuse, cgroups.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { checkMembership, isMember } from '../../runtime/identity/membership.ts';
import { Lineage, MAX_ANCESTRY_DEPTH } from '../../runtime/identity/lineage.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { resolveRequester, resolveRequesterVm } from '../../runtime/identity/resolve-requester.ts';
import { cgroupDirectory, detectCgroup2Mount } from '../../runtime/os/cgroup-mount.ts';
import { readCgroupPath } from '../../runtime/os/host-cgroup-path.ts';
import {
  deadPid,
  killAll,
  removeCgroupWhenEmpty,
  spawnShell,
  spawnShellAtPid,
  waitForChildren,
  waitForTickAfter,
} from './support/processes.ts';

const identity = (n: number) => ({
  uuid: `3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b1${n}`,
  name: `vm-${n}`,
  id: n,
  labels: [] as Array<[string, string]>,
});

function vmRootedAt(pid: number, n = 1): RegisteredVm {
  const startTime = readStartTime(pid);
  if (startTime === null) throw new Error(`pid ${pid} vanished`);
  return { identity: identity(n), anchor: { rootPid: pid, rootStartTime: startTime } };
}

describe('root-pid membership', () => {
  it('covers the root, its children and grandchildren, and nothing unrelated', async () => {
    const root = spawnShell('sh -c "sleep 300 & wait" & sleep 300 & wait');
    const [inner, sleeper] = await waitForChildren(root.pid, 2);
    const [grandchild] = await waitForChildren(inner!, 1);
    const other = spawnShell('sleep 300 & wait');
    const [otherChild] = await waitForChildren(other.pid, 1);
    const vm = vmRootedAt(root.pid);

    for (const pid of [root.pid, inner!, sleeper!, grandchild!])
      expect(checkMembership(pid, vm), `pid ${pid}`).toEqual({ member: true, via: 'root-pid' });
    expect(checkMembership(other.pid, vm)).toEqual({ member: false, reason: 'not-descendant' });
    expect(isMember(otherChild!, vm)).toBe(false);
    expect(isMember(process.pid, vm)).toBe(false); // the root's parent is not inside
    expect(isMember(1, vm)).toBe(false);
  });

  it('refuses a dead pid', async () => {
    const root = spawnShell('sleep 300');
    expect(checkMembership(await deadPid(), vmRootedAt(root.pid))).toEqual({
      member: false,
      reason: 'no-such-process',
    });
  });

  it('refuses everything when the anchor start time does not match (stale registration)', async () => {
    const root = spawnShell('sleep 300 & wait');
    const [child] = await waitForChildren(root.pid, 1);
    const vm = vmRootedAt(root.pid);
    const stale: RegisteredVm = { ...vm, anchor: { rootPid: root.pid, rootStartTime: vm.anchor.rootStartTime! - 1 } };
    expect(checkMembership(root.pid, stale)).toEqual({ member: false, reason: 'anchor-stale' });
    expect(checkMembership(child!, stale)).toEqual({ member: false, reason: 'anchor-stale' });
    const noStartTime: RegisteredVm = { ...vm, anchor: { rootPid: root.pid } };
    expect(isMember(root.pid, noStartTime)).toBe(false);
    expect(checkMembership(root.pid, { identity: identity(1), anchor: {} })).toEqual({
      member: false,
      reason: 'no-anchor',
    });
  });

  it('does not accept a new process that reused the registered root pid', async () => {
    // Register A, kill it, then have the kernel hand A's pid to B (ns_last_pid; retried because
    // other processes on the host may fork in between).
    let reused: { vm: RegisteredVm; pid: number } | null = null;
    for (let attempt = 0; attempt < 40 && reused === null; attempt++) {
      const a = spawnShell('sleep 300');
      const vm = vmRootedAt(a.pid);
      await killAll();
      // Start times tick at USER_HZ (10 ms): a reuse within the same tick would be invisible to
      // them (real pid wrap-around cannot happen that fast); the pidfd covers that case.
      await waitForTickAfter(vm.anchor.rootStartTime!);
      const b = spawnShellAtPid(a.pid, 'sleep 300 & wait');
      if (b === a.pid) reused = { vm, pid: b };
      else await killAll();
    }
    if (reused === null) throw new Error('could not get the kernel to reuse a pid in 40 attempts');
    const [child] = await waitForChildren(reused.pid, 1);
    expect(readStartTime(reused.pid)).not.toBe(reused.vm.anchor.rootStartTime);
    expect(checkMembership(reused.pid, reused.vm)).toEqual({ member: false, reason: 'anchor-stale' });
    expect(isMember(child!, reused.vm)).toBe(false);
  });
});

describe('walk bound', () => {
  it('stops after MAX_ANCESTRY_DEPTH levels, so a deeper descendant is not a member', async () => {
    // A chain of nested shells, each one level deeper, ending in a sleep.
    const dir = mkdtempSync(join(tmpdir(), 'capgate-deep-'));
    const script = join(dir, 'nest.sh');
    writeFileSync(script, 'if [ "$1" -gt 0 ]; then sh "$0" $(($1 - 1)) & wait; else sleep 300; fi\n');
    const levels = MAX_ANCESTRY_DEPTH + 6;
    const root = spawnShell(`sh '${script}' ${levels} & wait`);
    const chain = [root.pid];
    while (chain.length < levels + 3) {
      const [next] = await waitForChildren(chain[chain.length - 1]!, 1);
      chain.push(next!);
    }
    const vm = vmRootedAt(root.pid);
    expect(checkMembership(chain[MAX_ANCESTRY_DEPTH]!, vm)).toEqual({ member: true, via: 'root-pid' });
    expect(checkMembership(chain[MAX_ANCESTRY_DEPTH + 1]!, vm)).toEqual({ member: false, reason: 'not-descendant' });
    expect(isMember(chain[chain.length - 1]!, vm)).toBe(false);
    // The lineage the walk saw is the real chain, leaf first.
    const lineage = Lineage.of(chain[10]!)!;
    expect(Array.from({ length: 11 }, (_, i) => lineage.at(i)?.pid)).toEqual(chain.slice(0, 11).reverse());
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('resolveRequesterVm', () => {
  it('finds the one VM a requester is in, null for none, null for ambiguous registrations', async () => {
    const a = spawnShell('sleep 300 & wait');
    const b = spawnShell('sleep 300 & wait');
    const [aChild] = await waitForChildren(a.pid, 1);
    const vmA = vmRootedAt(a.pid, 1);
    const vmB = vmRootedAt(b.pid, 2);
    expect(resolveRequesterVm(aChild!, [vmB, vmA])?.identity.uuid).toBe(vmA.identity.uuid);
    expect(resolveRequesterVm(process.pid, [vmA, vmB])).toBeNull();
    const duplicate: RegisteredVm = { ...vmRootedAt(a.pid, 3) };
    expect(resolveRequester(aChild!, [vmA, duplicate])).toEqual({
      kind: 'ambiguous',
      uuids: [vmA.identity.uuid, duplicate.identity.uuid],
    });
    expect(resolveRequesterVm(aChild!, [vmA, duplicate])).toBeNull();
  });
});

describe('cgroup membership', () => {
  const mount = detectCgroup2Mount();
  const canRun = (): string | null => {
    if (mount === null) return 'no cgroup2 mount in /proc/self/mountinfo';
    return null;
  };

  it('counts processes at or below the registered cgroup, not siblings', async (ctx) => {
    const why = canRun();
    if (why !== null) {
      console.warn(`SKIP cgroup membership: ${why}`);
      ctx.skip();
      return;
    }
    const name = `capgate-test-${randomBytes(4).toString('hex')}`;
    const group = `/${name}`;
    const dir = cgroupDirectory(mount!, group)!;
    const subDir = cgroupDirectory(mount!, `${group}/inner`)!;
    try {
      mkdirSync(dir);
      mkdirSync(subDir);
    } catch (e) {
      console.warn(`SKIP cgroup membership: this host does not let the test create ${dir}: ${String(e)}`);
      ctx.skip();
      return;
    }
    try {
      const inside = spawnShell('sleep 300');
      const below = spawnShell('sleep 300');
      const outside = spawnShell('sleep 300');
      writeFileSync(`${dir}/cgroup.procs`, String(inside.pid));
      writeFileSync(`${subDir}/cgroup.procs`, String(below.pid));
      expect(readCgroupPath(inside.pid)).toBe(group);
      expect(readCgroupPath(below.pid)).toBe(`${group}/inner`);

      const vm: RegisteredVm = { identity: identity(4), anchor: { cgroup: group } };
      expect(checkMembership(inside.pid, vm)).toEqual({ member: true, via: 'cgroup' });
      expect(checkMembership(below.pid, vm)).toEqual({ member: true, via: 'cgroup' });
      expect(checkMembership(outside.pid, vm)).toEqual({ member: false, reason: 'not-in-cgroup' });
      // A sibling whose name merely starts with ours is not below it.
      expect(isMember(inside.pid, { identity: identity(5), anchor: { cgroup: `${group}-x` } })).toBe(false);
      expect(isMember(inside.pid, { identity: identity(6), anchor: { cgroup: `${group}/inner` } })).toBe(false);
      // Either anchor suffices: a root-pid VM also covering a cgroup.
      const both = vmRootedAt(outside.pid, 7);
      both.anchor.cgroup = group;
      expect(checkMembership(inside.pid, both)).toEqual({ member: true, via: 'cgroup' });
      expect(checkMembership(outside.pid, both)).toEqual({ member: true, via: 'root-pid' });
    } finally {
      await killAll();
      for (const d of [subDir, dir]) await removeCgroupWhenEmpty(d);
    }
  });
});
