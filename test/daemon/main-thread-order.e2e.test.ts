// The daemon's main thread is shared between VMs by what each one's requests cost it: a VM that
// floods cheap decisions (each one the daemon's own work: parse, identity, set-memlock and its
// undo, audit, answer) does not make another VM's request wait behind every one of its own that
// was read in the same turn of the event loop.
//
// Made deterministic without timing anything: the daemon is stopped (SIGSTOP) while the flooding
// VM writes one request on each of its many connections and then the victim writes one; when the
// daemon goes on (SIGCONT), one poll of its event loop finds them all readable, the victim's
// last. The order they were decided in is the audit's sequence. The evaluation scheduler is set
// so that it reorders nothing (every evaluation starts at once, no share is held), so what is
// measured is the main thread's order alone.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostilePolicy } from '../support/hostile-policies.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { vmFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

/** Connections of the flooding VM, one request on each in the burst. */
const FLOOD = 24;
/** Decisions the flooding VM makes before the burst: its recent cost to the main thread. */
const WARM_UP = 200;
const BYTES = 64n * 1024n;

let daemon: DaemonProcess;
let flooder: VmAgent;
let victim: VmAgent;
let flooderTarget: number;
let victimTarget: number;
let stopped = false;

beforeAll(async () => {
  daemon = await spawnDaemon(
    daemonConfig(tempDir(), {
      request: { deadlineMs: 60_000 },
      // Nothing waits for an evaluation slot and no VM is held to a share: the evaluation
      // scheduler keeps the order in which the main thread hands it requests. The long window
      // keeps the two VMs "both asking" however slow the machine is between the steps below.
      scheduler: { globalConcurrency: 64, perKeyInFlight: 64, vmShare: 1, contentionWindowMs: 600_000 },
    }),
  );
  [flooder, victim] = await Promise.all([VmAgent.start(), VmAgent.start()]);
  [flooderTarget, victimTarget] = await Promise.all([flooder.spawnTarget(), victim.spawnTarget()]);
  await daemon.admin.registerVm(vmFor(flooder.pid, 'flooder-vm'));
  await daemon.admin.registerVm(vmFor(victim.pid, 'victim-vm'));
  // Cheap for the policy, not for the daemon: set-memlock, deny, and the daemon undoes it.
  await daemon.admin.pushPolicy('memlock-then-deny', await hostilePolicy('memlock-then-deny'));
  await daemon.admin.bind('set-memlock', { policy: 'memlock-then-deny' });
}, 300_000);

afterAll(async () => {
  if (stopped && daemon !== undefined) process.kill(daemon.pid, 'SIGCONT');
  await Promise.all([flooder?.stop(), victim?.stop()]);
  await daemon?.stop();
  removeTempDirs();
});

/** A Prometheus sample's value (NaN when absent). */
function sample(metrics: string, name: string): number {
  const found = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return found === undefined ? Number.NaN : Number(found.slice(name.length + 1));
}

/** The process state letter of /proc/<pid>/stat ('T': stopped). */
function stateOf(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

async function stopDaemon(): Promise<void> {
  process.kill(daemon.pid, 'SIGSTOP');
  stopped = true;
  // The signal is delivered asynchronously: wait until the kernel shows the process stopped.
  for (let i = 0; stateOf(daemon.pid) !== 'T'; i++) {
    if (i > 10_000) throw new Error(`the daemon (pid ${daemon.pid}) did not stop on SIGSTOP`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function continueDaemon(): void {
  process.kill(daemon.pid, 'SIGCONT');
  stopped = false;
}

describe("the main thread's order between VMs", () => {
  it("a victim's request read in the same turn as a flood of cheap requests is decided before the flood's", async () => {
    const warm = await flooder.requests({
      socketPath: daemon.requestSocket,
      targetPid: flooderTarget,
      bytes: BYTES,
      total: WARM_UP,
      concurrency: 4,
    });
    expect(warm.errors).toEqual([]);
    expect(warm.answered).toBe(WARM_UP);
    // One round on each burst connection: then the daemon has accepted every one of them (a
    // connection it had not would be read a turn later), and the victim has asked once: its
    // recent cost is one decision's, the flooder's more than 200's.
    await Promise.all([flooder.openBurst(daemon.requestSocket, FLOOD), victim.openBurst(daemon.requestSocket, 1)]);
    await Promise.all([flooder.sendBurst(flooderTarget, BYTES), victim.sendBurst(victimTarget, BYTES)]);
    const rounds = await Promise.all([flooder.burstAnswers(), victim.burstAnswers()]);
    for (const a of rounds.flat()) expect(a, JSON.stringify(a)).toMatchObject({ status: 200 });

    await stopDaemon();
    try {
      await flooder.sendBurst(flooderTarget, BYTES);
      await victim.sendBurst(victimTarget, BYTES);
    } finally {
      continueDaemon();
    }
    const [floods, [mine]] = await Promise.all([flooder.burstAnswers(), victim.burstAnswers()]);

    // Every request was decided (denied by the policy, its set-memlock undone) and answered.
    for (const a of [...floods, mine!]) expect(a, JSON.stringify(a)).toMatchObject({ status: 200 });
    const seqOf = async (id: string): Promise<number> => (await daemon.admin.getAuditRecord(id)).record.seq;
    const victimSeq = await seqOf(mine!.decisionId!);
    const floodSeqs = await Promise.all(floods.map((a) => seqOf(a.decisionId!)));
    // Read last, decided before most of the flood's requests that were read ahead of it.
    const after = floodSeqs.filter((s) => s > victimSeq).length;
    expect(after, `the victim's decision came before ${after} of the flood's ${FLOOD}`).toBeGreaterThanOrEqual(
      FLOOD / 2,
    );
    // Every answered request is audited, once; nothing else is.
    const all = await daemon.admin.queryAudit({ limit: 1000 });
    expect(all.records.length).toBe(WARM_UP + 2 * (FLOOD + 1));
    // They waited in the main thread's queue (the metrics say so), and nothing is left in it.
    const metrics = await daemon.admin.metrics();
    expect(sample(metrics, 'capgate_main_thread_wait_max_seconds')).toBeGreaterThan(0);
    expect(sample(metrics, 'capgate_main_thread_queued')).toBe(0);
    expect(metrics).not.toMatch(/capgate_requests_rejected_total\{reason="(queue-full|vm-queue-full|turn-deadline)"\}/);
  }, 120_000);
});
