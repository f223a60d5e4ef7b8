// A requester in a pid namespace of its own (libvirt in a virt-launcher pod, with the daemon
// on the node's pids), against a real daemon: the target pid it sends is a pid of ITS namespace.
// The daemon acts on that process (seen in /proc/<host pid>/limits), and refuses numbers that
// name nothing there, even when they name a process of the VM in the daemon's namespace.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNsPid } from '../../runtime/os/proc-nspid.ts';
import { libc, RLIMIT_MEMLOCK } from '../../runtime/os/libc.ts';
import { hostilePolicy } from '../support/hostile-policies.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { asPolicy, memlockOf, MiB, vmFor, waitFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

const unshare = spawnSync('unshare', ['--pid', '--fork', 'true'], { encoding: 'utf8' });
const canUnsharePid = unshare.status === 0;
if (!canUnsharePid)
  console.log(
    `SKIP pid namespace end to end: unshare --pid is not permitted here (${(unshare.stderr || unshare.error?.message || '').trim()})`,
  );

/** The host pid of the process whose pid is `nsPid` one level down, among the children of `parent`. */
function hostPidOf(parent: number, nsPid: number): number | undefined {
  const r = spawnSync('sh', ['-c', `grep -l "^PPid:[[:space:]]*${parent}$" /proc/[0-9]*/status`], { encoding: 'utf8' });
  for (const file of r.stdout.split('\n').filter(Boolean)) {
    const pid = Number(file.split('/')[2]);
    const ns = readNsPid(pid);
    if (ns?.length === 2 && ns[1] === nsPid) return pid;
  }
  return undefined;
}

describe.skipIf(!canUnsharePid)("a requester in a pid namespace below the daemon's", () => {
  let daemon: DaemonProcess;
  let agent: VmAgent; // pid 1 of its namespace: its fork parent, unshare, is the VM's root
  let unshareHost: number;
  let agentHost: number;
  let targetNs: number;
  let targetHost: number;

  beforeAll(async () => {
    daemon = await spawnDaemon(daemonConfig(tempDir()));
    agent = await VmAgent.start({ wrap: ['unshare', '--pid', '--fork', '--kill-child'] });
    unshareHost = agent.pid;
    agentHost = await waitFor(() => hostPidOf(unshareHost, 1), 'the agent (pid 1 of its namespace)');
    targetNs = await agent.spawnTarget();
    targetHost = await waitFor(() => hostPidOf(agentHost, targetNs), `the target (pid ${targetNs} of the namespace)`);
    await daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
    await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
    await daemon.admin.registerVm(vmFor(unshareHost, 'pidns-vm', [['memory-bytes', String(1n * MiB)]]));
  }, 240_000);

  afterAll(async () => {
    await agent?.stop();
    await daemon?.stop();
    removeTempDirs();
  });

  const ask = async (targetPid: number, bytes: bigint) => {
    const { reason, id } = await agent.requestOnce(daemon.requestSocket, targetPid, bytes);
    return { reason, id, record: (await daemon.admin.getAuditRecord(id)).record };
  };

  it('acts on the process the requester named in its own namespace', async () => {
    expect(targetHost).not.toBe(targetNs); // a number of the new namespace, not the host's pid
    const { reason, record } = await ask(targetNs, 3n * MiB);
    expect(reason).toBe('allow:');
    expect(memlockOf(targetHost)).toEqual({ soft: String(3n * MiB), hard: String(3n * MiB) });
    expect(record).toMatchObject({
      requester: { pid: agentHost },
      targetPid: targetNs,
      targetHostPid: targetHost,
      decision: 'allow',
    });
    expect(record.capabilityCalls).toContainEqual(
      expect.objectContaining({ op: 'set-memlock', pid: targetHost, result: 'ok' }),
    );
  });

  it('acts on the requester itself when it names its own pid (libvirt between fork and exec)', async () => {
    const { reason, record } = await ask(1, 2n * MiB);
    expect(reason).toBe('allow:');
    expect(memlockOf(agentHost)).toEqual({ soft: String(2n * MiB), hard: String(2n * MiB) });
    expect(record).toMatchObject({ targetPid: 1, targetHostPid: agentHost });
  });

  it("never reaches a process of the daemon's namespace by its host pid: the VM's root, or its own target, named by their host pids", async () => {
    const before = { root: memlockOf(unshareHost), target: memlockOf(targetHost) };
    for (const hostPid of [unshareHost, targetHost]) {
      const { reason, record } = await ask(hostPid, 1n * MiB);
      expect(reason).toBe('deny:unknown-target');
      expect(record).toMatchObject({
        decision: 'deny',
        errorKind: 'unknown-target',
        targetPid: hostPid,
        fuelUsed: 0,
        capabilityCalls: [],
      });
      expect(record.errorDetail).toMatch(
        new RegExp(`pid ${hostPid} of the requester's pid namespace .*names no process in that namespace`),
      );
      expect(record).not.toHaveProperty('targetHostPid');
    }
    expect(memlockOf(unshareHost)).toEqual(before.root);
    expect(memlockOf(targetHost)).toEqual(before.target);
  });

  it('denies a number that names no process of the namespace', async () => {
    const { reason, record } = await ask(4_000_000, 1n * MiB);
    expect(reason).toBe('deny:unknown-target');
    expect(record.errorDetail).toMatch(/pid 4000000 of the requester's pid namespace \(the requester is pid 1 there/);
  });

  // Last: it binds another policy. The intent, its undo and the audit all name the daemon's pid.
  it("undoes the effect of a denying policy on the translated process, and audits it by the daemon's pid", async () => {
    const set = libc().prlimit(targetHost, RLIMIT_MEMLOCK, { soft: 1n * MiB, hard: 2n * MiB });
    expect(set.ok).toBe(true);
    await daemon.admin.pushPolicy('memlock-then-deny', await hostilePolicy('memlock-then-deny'));
    await daemon.admin.bind('set-memlock', { policy: 'memlock-then-deny' });
    const { reason, record } = await ask(targetNs, 2n * MiB);
    expect(reason).toBe('deny:denied');
    expect(record).toMatchObject({ targetPid: targetNs, targetHostPid: targetHost, decision: 'deny' });
    expect(record.capabilityCalls.filter((c) => c.op === 'set-memlock')).toEqual([
      {
        op: 'set-memlock',
        pid: targetHost,
        bytes: String(2n * MiB),
        result: 'ok',
        before: { soft: String(1n * MiB), hard: String(2n * MiB) },
        undo: 'undone',
      },
    ]);
    expect(memlockOf(targetHost)).toEqual({ soft: String(1n * MiB), hard: String(2n * MiB) });
  });
});
