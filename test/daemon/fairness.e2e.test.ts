// Fairness between VMs on a real daemon: while one VM floods requests that each run into the
// evaluation deadline, another VM's requests are still answered, not starved into their own
// request deadline. And a binding switch lets in-flight requests finish on their revision.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { asPolicy, vmFor, waitFor } from './helpers/fixtures.ts';
import { buildSlowPolicy, SLOW_BYTES } from './helpers/slow-policy.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

let daemon: DaemonProcess;
let flooder: VmAgent;
let victim: VmAgent;
let floodTarget: number;
let victimTarget: number;

beforeAll(async () => {
  daemon = await spawnDaemon(
    daemonConfig(tempDir(), {
      // 2 workers: one VM may hold one of them (perKeyInFlight defaults to workers - 1).
      // Fuel never runs out first: the deadline does.
      engine: { workers: 2, limits: { deadlineMs: 400, fuel: 1e15 } },
      request: { deadlineMs: 3000 },
    }),
  );
  [flooder, victim] = await Promise.all([VmAgent.start(), VmAgent.start()]);
  [floodTarget, victimTarget] = await Promise.all([flooder.spawnTarget(), victim.spawnTarget()]);
  await daemon.admin.registerVm(vmFor(flooder.pid, 'flooder'));
  await daemon.admin.registerVm(vmFor(victim.pid, 'victim', [['vfio', 'true']]));
  await daemon.admin.pushPolicy('slow', await buildSlowPolicy());
  await daemon.admin.bind('set-memlock', { policy: 'slow' });
}, 300_000);

afterAll(async () => {
  await Promise.all([flooder?.stop(), victim?.stop()]);
  await daemon?.stop();
  removeTempDirs();
});

const busy = async (): Promise<true | undefined> => {
  const h = await daemon.admin.health();
  return (h.detail?.inFlight ?? 0) >= 1 ? true : undefined;
};

describe('fairness between VMs', () => {
  it('a VM flooding deadline-bound requests does not starve another VM', async () => {
    let floodDone = false;
    const flood = flooder
      .requests({
        socketPath: daemon.requestSocket,
        targetPid: floodTarget,
        bytes: SLOW_BYTES,
        total: 40,
        concurrency: 8,
      })
      .finally(() => (floodDone = true));
    await waitFor(busy, 'the flood to occupy a worker');

    const answered = await victim.requests({
      socketPath: daemon.requestSocket,
      targetPid: victimTarget,
      bytes: 4096n,
      total: 20,
      concurrency: 1,
    });
    expect(floodDone).toBe(false); // the victim ran entirely during the flood
    expect(answered.errors).toEqual([]);
    expect(answered.reasons).toEqual({ 'allow:': 20 });

    const f = await flood;
    expect(f.errors).toEqual([]);
    expect(f.answered).toBe(40);
    expect(f.decisions).toEqual({ deny: 40 });
    // The flood really ran into the evaluation deadline (and its surplus into the request deadline
    // while it waited behind its own in-flight cap), without touching the victim.
    expect(f.errorKinds['timeout']).toBeGreaterThan(0);
    expect(f.errorKinds, JSON.stringify(f.reasons)).toEqual({
      timeout: f.errorKinds['timeout'],
      ...(f.errorKinds['deadline'] ? { deadline: f.errorKinds['deadline'] } : {}),
    });
    const victimAudit = await daemon.admin.queryAudit({ vm: 'victim', limit: 100 });
    expect(victimAudit.records.every((r) => r.decision === 'allow' && r.errorKind === undefined)).toBe(true);
  }, 120_000);

  it('a binding switch lets an in-flight request finish on the revision it started with', async () => {
    const slowOne = flooder.requests({
      socketPath: daemon.requestSocket,
      targetPid: floodTarget,
      bytes: SLOW_BYTES,
      total: 1,
      concurrency: 1,
      collectIds: true,
    });
    await waitFor(busy, 'the slow request to be in flight');
    await daemon.admin.pushPolicy('vfio', asPolicy('vfio-only'));
    await daemon.admin.bind('set-memlock', { policy: 'vfio' });
    const after = await victim.requests({
      socketPath: daemon.requestSocket,
      targetPid: process.pid,
      bytes: 4096n,
      total: 1,
      concurrency: 1,
      collectIds: true,
    });
    expect(after.reasons).toEqual({ 'deny:target-not-in-requester-vm': 1 });
    const before = await slowOne;
    const oldRecord = (await daemon.admin.getAuditRecord(before.ids[0]!)).record;
    const newRecord = (await daemon.admin.getAuditRecord(after.ids[0]!)).record;
    expect(oldRecord).toMatchObject({ policy: { name: 'slow' }, errorKind: 'timeout' });
    expect(newRecord.policy).toMatchObject({ name: 'vfio' });
  }, 120_000);
});
