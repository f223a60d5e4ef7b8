// Attack: a registration whose anchor covers processes that are not the VM's own. An anchor at
// pid 1 (or at the daemon, or one of its ancestors, or a kernel thread) puts host processes in a
// VM, so that VM's policy may act on them; a VM nested in another lets one VM's policy act on the
// other's processes. Each refusal is a 409 (conflict with a named VM) or a 422 (an anchor no VM
// may have), against a real daemon with real process trees and, where the host allows it, real
// cgroups.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapgateApiError } from '../../runtime/client/index.ts';
import { detectCgroup2Mount, cgroupDirectory } from '../../runtime/os/cgroup-mount.ts';
import { readProcStat, readStartTime } from '../../runtime/os/proc-stat.ts';
import type { VmAnchor } from '../../runtime/identity/vm.ts';
import type { VmRegistration } from '../../runtime/wire/index.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from '../daemon/helpers/daemon-process.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { spawnChild } from '../support/processes/children.ts';
import { ChildOutput } from '../support/wait.ts';
import { removeCgroupWhenEmpty } from '../identity/support/processes.ts';

let daemon: DaemonProcess;

beforeAll(async () => {
  daemon = await spawnDaemon(daemonConfig(tempDir()));
});

afterAll(async () => {
  await daemon?.stop();
  removeTempDirs();
});

/** sh -> sleep: a root process and its child (killed after the test). */
async function tree(): Promise<{ root: number; child: number; sh: ChildProcess }> {
  const sh = spawnChild('sh', ['-c', 'sleep 600 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const [, child] = await new ChildOutput(sh).until(/^(\d+)\n/, "the sleep's pid");
  return { root: sh.pid!, child: Number(child), sh };
}

let names = 0;
function vm(anchor: VmAnchor, name = `vm-${++names}`): VmRegistration {
  return { identity: { uuid: randomUUID(), name, id: names, labels: [] }, anchor };
}

async function refusal(p: Promise<unknown>): Promise<CapgateApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CapgateApiError) return e;
    throw e;
  }
  throw new Error('the registration was accepted; it should have been refused');
}

describe('anchors no VM may have (422)', () => {
  it('refuses pid 1: every process on the host descends from it', async () => {
    const e = await refusal(daemon.admin.registerVm(vm({ rootPid: 1 })));
    expect(e.status).toBe(422);
    expect(e.code).toBe('invalid-anchor');
    expect(e.message).toMatch(/pid 1\b/);
    expect((await daemon.admin.listVms()).vms).toEqual([]);
  });

  it('refuses the daemon itself and each of its ancestors', async () => {
    const self = await refusal(daemon.admin.registerVm(vm({ rootPid: daemon.pid })));
    expect(self.status).toBe(422);
    expect(self.message).toMatch(/the capgate daemon itself/);
    // The daemon's parent is this test process; its parents up to pid 1 are the daemon's too.
    const ancestors: number[] = [];
    for (let pid = process.pid; pid > 1; pid = readProcStat(pid)!.ppid) ancestors.push(pid);
    for (const pid of ancestors) {
      const e = await refusal(daemon.admin.registerVm(vm({ rootPid: pid })));
      expect(e.status, `pid ${pid}`).toBe(422);
      expect(e.message).toMatch(/ancestor of the capgate daemon/);
    }
  });

  it('refuses a kernel thread', async (ctx) => {
    const kthreadd = readProcStat(2);
    if (kthreadd === null || kthreadd.comm !== 'kthreadd') {
      console.warn('SKIP kernel-thread anchor: no kthreadd (pid 2) is visible in this pid namespace');
      ctx.skip();
      return;
    }
    const e = await refusal(daemon.admin.registerVm(vm({ rootPid: 2 })));
    expect(e.status).toBe(422);
    expect(e.message).toMatch(/kernel thread/);
  });

  it('refuses the root cgroup', async () => {
    const e = await refusal(daemon.admin.registerVm(vm({ cgroup: '/' })));
    expect(e.message).toMatch(/root cgroup/);
  });
});

describe('anchors that overlap another VM (409, naming it)', () => {
  it("refuses an anchor inside another VM, and one whose tree holds another VM's anchor", async () => {
    const t = await tree();
    const outer = (await daemon.admin.registerVm(vm({ rootPid: t.root }, 'outer'))).vm;

    const inside = await refusal(daemon.admin.registerVm(vm({ rootPid: t.child })));
    expect(inside.status).toBe(409);
    expect(inside.message).toContain('"outer"');
    expect(inside.message).toContain(outer.identity.uuid);
    expect(inside.message).toMatch(/inside/);

    const same = await refusal(daemon.admin.registerVm(vm({ rootPid: t.root })));
    expect(same.status).toBe(409);
    expect(same.message).toContain('"outer"');

    // The other way round: a VM anchored at a child, then one anchored at that child's parent.
    const u = await tree();
    const inner = (await daemon.admin.registerVm(vm({ rootPid: u.child }, 'inner'))).vm;
    const holds = await refusal(daemon.admin.registerVm(vm({ rootPid: u.root })));
    expect(holds.status).toBe(409);
    expect(holds.message).toContain('"inner"');
    expect(holds.message).toContain(inner.identity.uuid);

    await daemon.admin.unregisterVm(outer.identity.uuid);
    await daemon.admin.unregisterVm(inner.identity.uuid);
  });

  it('lets a VM be updated with its own anchor or a process of its own tree, but not into another VM', async () => {
    const [t, u] = await Promise.all([tree(), tree()]);
    const a = (await daemon.admin.registerVm(vm({ rootPid: t.root }, 'a'))).vm;
    const b = (await daemon.admin.registerVm(vm({ rootPid: u.root }, 'b'))).vm;
    await daemon.admin.updateVm(a.identity.uuid, { identity: a.identity, anchor: { rootPid: t.root } });
    await daemon.admin.updateVm(a.identity.uuid, { identity: a.identity, anchor: { rootPid: t.child } });
    const e = await refusal(
      daemon.admin.updateVm(a.identity.uuid, { identity: a.identity, anchor: { rootPid: u.child } }),
    );
    expect(e.status).toBe(409);
    expect(e.message).toContain('"b"');
    expect((await daemon.admin.getVm(a.identity.uuid)).vm.anchor.rootPid).toBe(t.child);
    await daemon.admin.unregisterVm(a.identity.uuid);
    await daemon.admin.unregisterVm(b.identity.uuid);
  });

  it('a VM whose root process exited holds nothing: its former child may anchor another VM', async () => {
    const t = await tree();
    const gone = (await daemon.admin.registerVm(vm({ rootPid: t.root }, 'gone'))).vm;
    expect(readStartTime(t.root)).not.toBeNull();
    // The root exits; its child (re-parented away) is no longer a member of "gone".
    const exited = new Promise((r) => t.sh.once('exit', r));
    process.kill(t.root, 'SIGKILL');
    await exited;
    const ok = (await daemon.admin.registerVm(vm({ rootPid: t.child }, 'orphan'))).vm;
    expect(ok.anchor.rootPid).toBe(t.child);
    await daemon.admin.unregisterVm(gone.identity.uuid);
    await daemon.admin.unregisterVm(ok.identity.uuid);
  });

  it("refuses a cgroup at, above or below another VM's cgroup, but not a sibling that shares a prefix", async () => {
    const base = `/capgate-test-${process.pid}`;
    const a = (await daemon.admin.registerVm(vm({ cgroup: `${base}/pod-a` }, 'pod-a'))).vm;
    for (const cgroup of [`${base}/pod-a`, `${base}/pod-a/qemu`, base]) {
      const e = await refusal(daemon.admin.registerVm(vm({ cgroup })));
      expect(e.status, cgroup).toBe(409);
      expect(e.message).toContain('"pod-a"');
    }
    const sibling = (await daemon.admin.registerVm(vm({ cgroup: `${base}/pod-ab` }))).vm;
    await daemon.admin.unregisterVm(sibling.identity.uuid);
    await daemon.admin.unregisterVm(a.identity.uuid);
  });
});

describe('with real cgroups', () => {
  const mount = detectCgroup2Mount();
  const group = `/capgate-reg-${process.pid}`;
  const dir = mount && cgroupDirectory(mount, group);
  let usable = false;

  beforeAll(() => {
    if (!dir) return;
    try {
      fs.mkdirSync(dir);
      fs.mkdirSync(`${dir}/daemon`);
      usable = true;
    } catch (e) {
      console.warn(`SKIP cgroup registration tests: cannot create ${dir}: ${String(e)}`);
    }
  });

  afterAll(async () => {
    if (!usable || !dir) return;
    // Move everything back to the root group, then remove ours.
    const subs = [`${dir}/daemon`, `${dir}/vm`, `${dir}/part`, `${dir}/part2`, dir];
    for (const sub of subs) {
      if (!fs.existsSync(sub)) continue;
      for (const pid of fs.readFileSync(`${sub}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
        try {
          fs.writeFileSync(`${mount!.mountPoint}/cgroup.procs`, pid);
        } catch {
          // exited
        }
      }
    }
    for (const sub of subs.filter((d) => fs.existsSync(d))) await removeCgroupWhenEmpty(sub);
  });

  it("refuses a cgroup that holds the daemon, and one that holds another VM's root process", async (ctx) => {
    if (!usable) return ctx.skip();
    fs.writeFileSync(`${dir}/daemon/cgroup.procs`, String(daemon.pid));
    const e = await refusal(daemon.admin.registerVm(vm({ cgroup: group })));
    expect(e.status).toBe(422);
    expect(e.message).toMatch(/the capgate daemon/);
    fs.writeFileSync(`${mount!.mountPoint}/cgroup.procs`, String(daemon.pid));

    const t = await tree();
    fs.mkdirSync(`${dir}/vm`);
    fs.writeFileSync(`${dir}/vm/cgroup.procs`, String(t.root));
    fs.writeFileSync(`${dir}/vm/cgroup.procs`, String(t.child));
    const byPid = (await daemon.admin.registerVm(vm({ rootPid: t.root }, 'by-pid'))).vm;
    const holds = await refusal(daemon.admin.registerVm(vm({ cgroup: `${group}/vm` })));
    expect(holds.status).toBe(409);
    expect(holds.message).toContain('"by-pid"');
    await daemon.admin.unregisterVm(byPid.identity.uuid);

    // And a pid anchor whose process sits in another VM's cgroup is inside that VM.
    const byCgroup = (await daemon.admin.registerVm(vm({ cgroup: `${group}/vm` }, 'by-cgroup'))).vm;
    const inside = await refusal(daemon.admin.registerVm(vm({ rootPid: t.child })));
    expect(inside.status).toBe(409);
    expect(inside.message).toContain('"by-cgroup"');
    await daemon.admin.unregisterVm(byCgroup.identity.uuid);
  });

  it('refuses a process tree and a cgroup that share a process below their roots, whichever comes first', async (ctx) => {
    if (!usable) return ctx.skip();
    const [t, u] = await Promise.all([tree(), tree()]);
    fs.mkdirSync(`${dir}/part`);
    fs.writeFileSync(`${dir}/part/cgroup.procs`, String(t.child)); // the child only; its root stays outside
    const byCgroup = (await daemon.admin.registerVm(vm({ cgroup: `${group}/part` }, 'part'))).vm;
    const e = await refusal(daemon.admin.registerVm(vm({ rootPid: t.root })));
    expect(e.status).toBe(409);
    expect(e.message).toContain('"part"');
    expect(e.message).toContain(`holds pid ${t.child}`);
    await daemon.admin.unregisterVm(byCgroup.identity.uuid);

    const byPid = (await daemon.admin.registerVm(vm({ rootPid: u.root }, 'tree'))).vm;
    fs.mkdirSync(`${dir}/part2`);
    fs.writeFileSync(`${dir}/part2/cgroup.procs`, String(u.child));
    const e2 = await refusal(daemon.admin.registerVm(vm({ cgroup: `${group}/part2` })));
    expect(e2.status).toBe(409);
    expect(e2.message).toContain('"tree"');
    expect(e2.message).toContain(`holds pid ${u.child}`);
    await daemon.admin.unregisterVm(byPid.identity.uuid);
  });
});
