// The daemon in a cgroup namespace of its own, as a DaemonSet container that is not privileged
// is on cgroup v2: /proc/<pid>/cgroup of a VM's processes then reads `/../../…`, never the node's
// path the VM was registered with. With the node's whole hierarchy mounted (the hostPath volume
// of deploy/kubernetes/capgate.yaml) the daemon places its namespace's root on the node and
// matches cgroup anchors as in the node's namespace. Without it, it says so: health degraded,
// cgroup anchors refused with the cause, instead of denying every request of the VM silently.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapgateApiError } from '../../runtime/client/index.ts';
import { detectCgroup2Mount } from '../../runtime/os/cgroup-mount.ts';
import type { VmRegistration } from '../../runtime/wire/index.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { asPolicy, memlockOf, MiB, vmFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

const mount = detectCgroup2Mount();
const group = `/capgate-cgns-${process.pid}`;
const dir = mount === null || mount.root !== '/' ? null : path.join(mount.mountPoint, group);

function prerequisites(): string | null {
  if (dir === null) return "no cgroup2 mount of the whole hierarchy in the test's namespace";
  const u = spawnSync('unshare', ['-C', '-m', 'true'], { encoding: 'utf8' });
  if (u.status !== 0) return `unshare -C -m is not permitted here (${(u.stderr || u.error?.message || '').trim()})`;
  try {
    for (const sub of ['', 'daemon', 'vm']) fs.mkdirSync(path.join(dir, sub));
  } catch (e) {
    return `cannot create cgroups under ${mount!.mountPoint}: ${String(e)}`;
  }
  return null;
}
const missing = prerequisites();
if (missing !== null) console.log(`SKIP the daemon in a cgroup namespace: ${missing}`);

/**
 * Runs the daemon in a new cgroup namespace rooted at <group>/daemon and a mount namespace with
 * a cgroup2 mount of that namespace (what the container runtime gives a container). `whole`:
 * the test's mount of the whole hierarchy stays visible (the hostPath volume); otherwise it is
 * unmounted, and the daemon sees only its own namespace's tree.
 */
function wrapper(tmp: string, whole: boolean): string[] {
  const own = path.join(tmp, 'own-cgroup');
  fs.mkdirSync(own);
  const script = path.join(tmp, 'wrap.sh');
  fs.writeFileSync(
    script,
    [
      'cg=$1 own=$2 mode=$3 whole=$4; shift 4',
      'echo $$ > "$cg/cgroup.procs" || exit 90',
      "exec unshare -C -m sh -c '",
      '  mount --make-rprivate / && mount -t cgroup2 none "$1" || exit 91',
      '  if [ "$2" = own-only ]; then umount -l "$3" || exit 92; fi',
      '  shift 3; exec "$@"\' sh "$own" "$mode" "$whole" "$@"',
      '',
    ].join('\n'),
  );
  return ['sh', script, path.join(dir!, 'daemon'), own, whole ? 'whole' : 'own-only', mount!.mountPoint];
}

/** A VM registration anchored at a cgroup (a node path). */
function cgroupVm(name: string, cgroup: string, labels: Array<[string, string]> = []): VmRegistration {
  return { identity: { uuid: randomUUID(), name, id: 1, labels }, anchor: { cgroup } };
}

/** Moves every process of our groups back to the root group and removes the groups. */
function removeGroups(): void {
  if (dir === null || !fs.existsSync(dir)) return;
  for (const sub of ['vm', 'daemon', '']) {
    const d = path.join(dir, sub);
    if (!fs.existsSync(d)) continue;
    for (const pid of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      try {
        fs.writeFileSync(path.join(mount!.mountPoint, 'cgroup.procs'), pid);
      } catch {
        // exited
      }
    }
    fs.rmdirSync(d);
  }
}

describe.skipIf(missing !== null)('the daemon in a cgroup namespace of its own', () => {
  let agent: VmAgent;
  let target: number;

  beforeAll(async () => {
    agent = await VmAgent.start();
    fs.writeFileSync(path.join(dir!, 'vm', 'cgroup.procs'), String(agent.pid)); // before its target: children inherit it
    target = await agent.spawnTarget();
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    removeGroups();
    removeTempDirs();
  });

  describe('with the whole hierarchy mounted (the hostPath volume)', () => {
    let daemon: DaemonProcess;
    beforeAll(async () => {
      const tmp = tempDir();
      daemon = await spawnDaemon(daemonConfig(tmp), { wrap: wrapper(tmp, true) });
      await daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
      await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
    }, 240_000);
    afterAll(async () => {
      await daemon?.stop();
    });

    it("is in a namespace of its own: the VM's cgroup reads as a path above its root", () => {
      const r = spawnSync('nsenter', ['-t', String(daemon.pid), '-C', 'cat', `/proc/${agent.pid}/cgroup`], {
        encoding: 'utf8',
      });
      expect(r.stdout).toMatch(/^0::\/\.\.\/vm$/m); // its root is <group>/daemon
    });

    it('matches a VM anchored at its node cgroup path, and acts on its process', async () => {
      expect((await daemon.admin.health()).status).toBe('ok');
      await daemon.admin.registerVm(cgroupVm('cg-vm', `${group}/vm`, [['memory-bytes', String(1n * MiB)]]));
      const r = await agent.requests({
        socketPath: daemon.requestSocket,
        targetPid: target,
        bytes: 2n * MiB,
        total: 1,
        concurrency: 1,
        collectIds: true,
      });
      expect(r.reasons).toEqual({ 'allow:': 1 });
      expect(memlockOf(target)).toEqual({ soft: String(2n * MiB), hard: String(2n * MiB) });
      const { record } = await daemon.admin.getAuditRecord(r.ids[0]!);
      expect(record).toMatchObject({ vm: { name: 'cg-vm' }, decision: 'allow' });
    });

    it('still refuses a cgroup that holds the daemon itself (its node path, resolved)', async () => {
      const e = await daemon.admin.registerVm(cgroupVm('holds-daemon', `${group}/daemon`)).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(CapgateApiError);
      expect((e as CapgateApiError).status).toBe(422);
      expect((e as CapgateApiError).message).toMatch(/the capgate daemon itself/);
    });
  });

  describe("with only its own namespace's tree mounted", () => {
    let daemon: DaemonProcess;
    beforeAll(async () => {
      const tmp = tempDir();
      daemon = await spawnDaemon(daemonConfig(tmp), { wrap: wrapper(tmp, false) });
    }, 240_000);
    afterAll(async () => {
      await daemon?.stop();
    });

    it('says so: health degraded with the cause, logged at start', async () => {
      const health = await daemon.admin.health();
      expect(health.status).toBe('degraded');
      expect(health.problems).toEqual([
        expect.stringMatching(
          /cgroup anchors cannot match: capgate runs in a cgroup namespace of its own .* no cgroup2 mount in it shows the whole hierarchy.*hostPath volume of \/sys\/fs\/cgroup/,
        ),
      ]);
      expect(
        daemon.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('cgroup anchors cannot match')),
      ).toBe(true);
    });

    it('refuses a cgroup anchor with the cause, and still takes a root-process anchor', async () => {
      const e = await daemon.admin.registerVm(cgroupVm('cg-vm', `${group}/vm`)).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(CapgateApiError);
      expect((e as CapgateApiError).status).toBe(422);
      expect((e as CapgateApiError).message).toMatch(
        new RegExp(`anchor.cgroup ${group}/vm could never match: capgate runs in a cgroup namespace of its own`),
      );
      const byPid = await daemon.admin.registerVm(vmFor(agent.pid, 'pid-vm', [['memory-bytes', String(1n * MiB)]]));
      expect(byPid.vm.anchor.rootPid).toBe(agent.pid);
    });
  });
});
