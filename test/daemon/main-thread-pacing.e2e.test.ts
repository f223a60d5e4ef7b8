// A VM is held to its share of the daemon's main thread while another VM asks
// (scheduler.mainThreadShare): a flood of decisions that are cheap for the policy but not for the
// daemon (each one its HTTP, identity, set-memlock and its undo, audit and answer) keeps its
// requests waiting in the turn queue until its bucket refills, and the other VM's requests go
// ahead meanwhile. Alone, the same flood is never held.
//
// No time is measured: the share is made so small (0.004: a request that costs the main thread
// 0.4 ms takes 100 ms to pay back; measured here, 1-3 ms a request) that the flood's requests,
// once its bucket is spent, run ~100 ms or more apart by construction, while the victim's few requests, one after the other,
// fit in its own bucket and are never held. The evaluation scheduler holds no one (vmShare 1),
// so what holds the flood is the main thread's pacing alone. The order they were decided in is
// the audit's sequence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostilePolicy } from '../support/hostile-policies.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { vmFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

/** The flood alone: its main-thread cost is well over the bucket (mainThreadBurstMs), so the bucket ends empty. */
const ALONE = 400;
/** The flood's requests while the victim asks. */
const FLOOD = 8;
/** The victim's requests, one after the other, while the flood's wait. */
const VICTIM = 5;
const BYTES = 64n * 1024n;

let daemon: DaemonProcess;
let flooder: VmAgent;
let victim: VmAgent;
let flooderTarget: number;
let victimTarget: number;

beforeAll(async () => {
  daemon = await spawnDaemon(
    daemonConfig(tempDir(), {
      // No request is refused for its deadline here, however slow the machine.
      request: { deadlineMs: 60_000 },
      scheduler: {
        globalConcurrency: 64,
        perKeyInFlight: 64,
        vmShare: 1,
        mainThreadShare: 0.004,
        // The victim's few requests fit in it; the flood alone spends it many times over.
        mainThreadBurstMs: 20,
        // Both VMs count as asking for the whole test, however slow the machine between steps.
        contentionWindowMs: 600_000,
      },
    }),
  );
  [flooder, victim] = await Promise.all([VmAgent.start(), VmAgent.start()]);
  [flooderTarget, victimTarget] = await Promise.all([flooder.spawnTarget(), victim.spawnTarget()]);
  await daemon.admin.registerVm(vmFor(flooder.pid, 'flooder-vm'));
  await daemon.admin.registerVm(vmFor(victim.pid, 'victim-vm'));
  await daemon.admin.pushPolicy('memlock-then-deny', await hostilePolicy('memlock-then-deny'));
  await daemon.admin.bind('set-memlock', { policy: 'memlock-then-deny' });
}, 300_000);

afterAll(async () => {
  await Promise.all([flooder?.stop(), victim?.stop()]);
  await daemon?.stop();
  removeTempDirs();
});

/** A Prometheus sample's value (0 when absent). */
function sample(metrics: string, name: string): number {
  const found = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return found === undefined ? 0 : Number(found.slice(name.length + 1));
}

const flood = (total: number, concurrency: number) =>
  flooder.requests({
    socketPath: daemon.requestSocket,
    targetPid: flooderTarget,
    bytes: BYTES,
    total,
    concurrency,
    collectIds: true,
  });

describe("a VM's share of the main thread", () => {
  it('a VM alone is never held, however much of the main thread it takes', async () => {
    const alone = await flood(ALONE, 4);
    expect(alone.errors).toEqual([]);
    expect(alone.answered).toBe(ALONE);
    const metrics = await daemon.admin.metrics();
    expect(sample(metrics, 'capgate_main_thread_paced_total')).toBe(0);
    expect(sample(metrics, 'capgate_requests_rejected_total{reason="vm-rate-limited"}')).toBe(0);
    // The work around each request was measured (and charged to the flood, held or not).
    expect(sample(metrics, 'capgate_main_thread_request_overhead_seconds')).toBeGreaterThan(0);
  }, 120_000);

  it("while another VM asks, the flood's requests wait for its share and the other VM's go ahead", async () => {
    // The victim asks: from now on the flood is not alone, and its bucket was spent alone.
    const first = await victim.requestOnce(daemon.requestSocket, victimTarget, BYTES);
    const flooding = flood(FLOOD, FLOOD);
    // The victim's requests, one after the other, while the flood's wait.
    const mine: string[] = [first.id];
    for (let i = 0; i < VICTIM; i++)
      mine.push((await victim.requestOnce(daemon.requestSocket, victimTarget, BYTES)).id);
    const held = await daemon.admin.metrics();
    const floods = await flooding;

    // Every request was decided (denied by the policy, its set-memlock undone) and answered:
    // the flood waited, within its deadline, and was not refused.
    expect(floods.errors).toEqual([]);
    expect(floods.answered).toBe(FLOOD);
    // The flood was held for its share (each time until one of its requests ran)...
    expect(sample(held, 'capgate_main_thread_paced_total')).toBeGreaterThan(0);
    // ...and the victim's requests, asked after the flood's, were decided before most of them.
    const seqOf = async (id: string): Promise<number> => (await daemon.admin.getAuditRecord(id)).record.seq;
    const victimSeqs = await Promise.all(mine.map(seqOf));
    const floodSeqs = await Promise.all(floods.ids.map(seqOf));
    const lastVictim = Math.max(...victimSeqs);
    const after = floodSeqs.filter((s) => s > lastVictim).length;
    expect(after, `the victim's last decision came before ${after} of the flood's ${FLOOD}`).toBeGreaterThanOrEqual(
      FLOOD / 2,
    );
    // Nothing is left waiting, nothing was refused.
    const metrics = await daemon.admin.metrics();
    expect(sample(metrics, 'capgate_main_thread_queued')).toBe(0);
    expect(sample(metrics, 'capgate_main_thread_paced_vms')).toBe(0);
    expect(metrics).not.toMatch(/capgate_requests_rejected_total\{reason="(vm-rate-limited|turn-deadline)"\}/);
  }, 120_000);
});
