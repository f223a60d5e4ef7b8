// One evaluation worker (a 1-core host's default), held by a hostile VM whose policy spins there
// until its deadline: another VM's decisions, which the main thread makes at once, are answered
// meanwhile. They used to wait for the worker's scheduler slot, that is for the hostile's deadline.
// A real daemon, real VMs (agent processes), one policy bound for both: it spins only on the
// hostile's STORM_BYTES requests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostilePolicy, STORM_BYTES } from '../support/hostile-policies.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { MiB, vmFor, waitFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

let daemon: DaemonProcess;
let hostile: VmAgent;
let victim: VmAgent;
let hostileTarget: number;
let victimTarget: number;

beforeAll(async () => {
  daemon = await spawnDaemon(
    daemonConfig(tempDir(), {
      // One worker: one global slot, one per VM. Fuel never runs out first: the deadline does,
      // and it is long enough for the victim's requests to be answered many times over.
      engine: { workers: 1, limits: { deadlineMs: 5000, fuel: 1e15 } },
      request: { deadlineMs: 15_000 },
    }),
  );
  [hostile, victim] = await Promise.all([VmAgent.start(), VmAgent.start()]);
  [hostileTarget, victimTarget] = await Promise.all([hostile.spawnTarget(), victim.spawnTarget()]);
  await daemon.admin.registerVm(vmFor(hostile.pid, 'hostile'));
  await daemon.admin.registerVm(vmFor(victim.pid, 'victim'));
  // On STORM_BYTES: set-memlock, then spin (past the main thread's slice: on in the worker); else set-memlock and allow.
  await daemon.admin.pushPolicy('spin-on-storm', await hostilePolicy('memlock-then-spin', { onStormOnly: true }));
  await daemon.admin.bind('set-memlock', { policy: 'spin-on-storm' });
}, 300_000);

afterAll(async () => {
  await Promise.all([hostile?.stop(), victim?.stop()]);
  await daemon?.stop();
  removeTempDirs();
});

describe('the only worker, held by a hostile VM', () => {
  it("holds no other VM's decision that the main thread makes: 20 are answered before the hostile's", async () => {
    let hostileAnswered = false;
    const spinning = hostile
      .requests({
        socketPath: daemon.requestSocket,
        targetPid: hostileTarget,
        bytes: STORM_BYTES,
        total: 1,
        concurrency: 1,
      })
      .finally(() => (hostileAnswered = true));
    // Its evaluation holds the slot: it went on in the worker.
    await waitFor(
      async () => ((await daemon.admin.health()).detail?.inFlight === 1 ? true : undefined),
      'the hostile run in the worker',
    );

    const answered = await victim.requests({
      socketPath: daemon.requestSocket,
      targetPid: victimTarget,
      bytes: 2n * MiB,
      total: 20,
      concurrency: 1,
    });
    expect(hostileAnswered).toBe(false);
    expect(answered).toMatchObject({ answered: 20, decisions: { allow: 20 }, errorCount: 0 });

    const spun = await spinning;
    expect(spun).toMatchObject({ answered: 1, decisions: { deny: 1 }, errorKinds: { timeout: 1 } });
  }, 120_000);
});
