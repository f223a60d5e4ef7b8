// Hostile policies of every class against real daemons (real sockets, real workers, real prlimit,
// real journals): what a policy makes the daemon do costs it fuel or is refused at upload, and
// never stops another VM from being served; every effect is in the audit exactly as the kernel
// shows it (/proc/<pid>/limits) and is undone unless the decision is allow; a kill -9 right after
// an effect leaves an intent that the restart audits as a lost decision; and a request for a
// policy still compiling after a start gets a clear, retryable answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapgateApiError } from '../../runtime/client/index.ts';
import { libc, RLIMIT_MEMLOCK } from '../../runtime/os/libc.ts';
import type { AuditRecord } from '../../runtime/wire/index.ts';
import { hostilePolicy, STORM_BYTES, UPLOAD_BOMBS, type HostileClass } from '../support/hostile-policies.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { asPolicy, memlockOf, MiB, vmFor, waitFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';
import type { SeamFlags } from './helpers/seamed-daemon-main.ts';
import type { DaemonConfigInput } from '../../runtime/daemon/config.ts';
import { descendantsRunning as below, readProc } from '../support/processes/proc-table.ts';
import { waitFor as waitForProbe } from '../support/wait.ts';

// --- VMs: agents (libvirt's side) registered as VM roots, each with a "QEMU" target

let hostileVm: VmAgent;
let victimVm: VmAgent;
let target: number;
let victimTarget: number;

beforeAll(async () => {
  [hostileVm, victimVm] = await Promise.all([VmAgent.start(), VmAgent.start()]);
  target = await hostileVm.spawnTarget();
  victimTarget = await victimVm.spawnTarget();
});

afterAll(async () => {
  await Promise.all([hostileVm?.stop(), victimVm?.stop()]);
  removeTempDirs();
});

/** soft/hard of the target, set from here (lowering only: allowed without CAP_SYS_RESOURCE). */
function setLimit(pid: number, soft: bigint, hard: bigint): void {
  const r = libc().prlimit(pid, RLIMIT_MEMLOCK, { soft, hard });
  if (!r.ok) throw new Error(`prlimit(${pid}) failed with errno ${r.errno}`);
}

async function start(config: DaemonConfigInput, seams?: SeamFlags): Promise<DaemonProcess> {
  const daemon = await spawnDaemon(config, { seams });
  await daemon.admin.registerVm(vmFor(hostileVm.pid, 'hostile-vm'));
  await daemon.admin.registerVm(vmFor(victimVm.pid, 'victim-vm', [['memory-bytes', String(64n * MiB)]]));
  return daemon;
}

/** Pushes and binds a policy: memlock-cap, or a hostile one (storms attack only on STORM_BYTES). */
async function bind(daemon: DaemonProcess, name: HostileClass | 'memlock-cap'): Promise<void> {
  const bytes =
    name === 'memlock-cap'
      ? asPolicy('memlock-cap')
      : await hostilePolicy(name, { onStormOnly: name.endsWith('-storm') });
  await daemon.admin.pushPolicy(name, bytes);
  await daemon.admin.bind('set-memlock', { policy: name });
}

/** One request from the hostile VM; its audit record. */
async function decide(daemon: DaemonProcess, bytes: bigint, agent = hostileVm, pid = target): Promise<AuditRecord> {
  const { id } = await agent.requestOnce(daemon.requestSocket, pid, bytes);
  return (await daemon.admin.getAuditRecord(id)).record;
}

const memlockCall = (r: AuditRecord) => r.capabilityCalls.find((c) => c.op === 'set-memlock');
const kernel = (pid: number): { soft: string; hard: string } => memlockOf(pid);

describe('a daemon with default limits', () => {
  let daemon: DaemonProcess;
  beforeAll(async () => {
    daemon = await start(daemonConfig(tempDir()));
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
  });

  it('memlock then deny: a raised soft limit is put back; the audit lists the call, its value before and "undone"', async () => {
    await bind(daemon, 'memlock-then-deny');
    setLimit(target, 1n * MiB, 8n * MiB);
    const r = await decide(daemon, 8n * MiB);
    expect(r).toMatchObject({ decision: 'deny', reason: 'denied' });
    expect(memlockCall(r)).toEqual({
      op: 'set-memlock',
      pid: target,
      bytes: String(8n * MiB),
      result: 'ok',
      before: { soft: String(1n * MiB), hard: String(8n * MiB) },
      undo: 'undone',
    });
    expect(kernel(target)).toEqual({ soft: String(1n * MiB), hard: String(8n * MiB) });
  }, 120_000);

  it('memlock then deny: a lowered hard limit cannot be put back here (EPERM): the audit says so, as the kernel shows', async () => {
    setLimit(target, 8n * MiB - 4096n, 8n * MiB - 4096n);
    const r = await decide(daemon, 4n * MiB);
    expect(memlockCall(r)).toMatchObject({
      result: 'ok',
      before: { soft: String(8n * MiB - 4096n), hard: String(8n * MiB - 4096n) },
      undo: 'undo failed: EPERM',
    });
    expect(kernel(target)).toEqual({ soft: String(4n * MiB), hard: String(4n * MiB) });
  });

  it('memlock then trap: undone', async () => {
    await bind(daemon, 'memlock-then-trap');
    setLimit(target, 1n * MiB, 4n * MiB);
    const r = await decide(daemon, 4n * MiB);
    expect(r).toMatchObject({ decision: 'deny', errorKind: 'trap' });
    expect(memlockCall(r)).toMatchObject({ result: 'ok', undo: 'undone' });
    expect(kernel(target)).toEqual({ soft: String(1n * MiB), hard: String(4n * MiB) });
  }, 120_000);

  it('memlock then spin (fuel): the effect of the run on the main thread is listed after the worker ran out of fuel, and undone', async () => {
    await bind(daemon, 'memlock-then-spin');
    setLimit(target, 2n * MiB, 4n * MiB);
    const r = await decide(daemon, 4n * MiB);
    expect(r).toMatchObject({ decision: 'deny', errorKind: 'fuel-exhausted' });
    expect(memlockCall(r)).toMatchObject({ result: 'ok', undo: 'undone' });
    expect(kernel(target)).toEqual({ soft: String(2n * MiB), hard: String(4n * MiB) });
  }, 120_000);

  it('a log storm (23,000 lines of 4 KiB a decision) keeps only the caps, and another VM is served all along', async () => {
    await bind(daemon, 'log-storm');
    const storm = hostileVm.requests({
      socketPath: daemon.requestSocket,
      targetPid: target,
      bytes: STORM_BYTES,
      total: 12,
      concurrency: 2,
      collectIds: true,
    });
    const victim = await victimVm.requests({
      socketPath: daemon.requestSocket,
      targetPid: victimTarget,
      bytes: 2n * MiB,
      total: 40,
      concurrency: 1,
    });
    const stormed = await storm;
    expect(victim).toMatchObject({ answered: 40, decisions: { allow: 40 }, errorCount: 0 });
    expect(stormed).toMatchObject({ answered: 12, decisions: { allow: 12 }, errorCount: 0 });
    const record = (await daemon.admin.getAuditRecord(stormed.ids[0]!)).record;
    expect(record.logs).toHaveLength(4); // 16 KiB of log text kept a decision, the rest counted, never decoded
    expect(record.fuelUsed).toBeGreaterThanOrEqual(23_000 * 128);
    const metrics = await daemon.admin.metrics();
    expect(metrics).toMatch(/^capgate_event_loop_delay_max_seconds \d/m);
    expect(metrics).toMatch(/^capgate_event_loop_delay_p99_seconds \d/m);
  }, 180_000);

  it('a memory.grow(0) storm pays its fuel, and another VM is served all along', async () => {
    await bind(daemon, 'grow-storm');
    const storm = hostileVm.requests({
      socketPath: daemon.requestSocket,
      targetPid: target,
      bytes: STORM_BYTES,
      total: 12,
      concurrency: 2,
      collectIds: true,
    });
    const victim = await victimVm.requests({
      socketPath: daemon.requestSocket,
      targetPid: victimTarget,
      bytes: 2n * MiB,
      total: 40,
      concurrency: 1,
    });
    const stormed = await storm;
    expect(victim).toMatchObject({ answered: 40, decisions: { allow: 40 }, errorCount: 0 });
    expect(stormed.decisions).toEqual({ allow: 12 });
    expect((await daemon.admin.getAuditRecord(stormed.ids[0]!)).record.fuelUsed).toBeGreaterThanOrEqual(30_000 * 256);
  }, 180_000);

  it('upload bombs (tables, element segments, functions, types) are refused naming the limit, while another VM is served', async () => {
    await bind(daemon, 'memlock-cap');
    const bombs: Array<[keyof typeof UPLOAD_BOMBS, RegExp]> = [
      ['table-bomb', /table of 10000000 entries; the limit is 10000 \(limits\.maxTableEntries\)/],
      ['element-bomb', /200000 element entries; the limit is 10000/],
      ['function-count', /functions; the limit is 10000 \(limits\.maxFunctions\)/],
      ['type-bomb', /limits\.maxTypeWidth/],
    ];
    const victim = victimVm.requests({
      socketPath: daemon.requestSocket,
      targetPid: victimTarget,
      bytes: 2n * MiB,
      total: 40,
      concurrency: 1,
    });
    for (const [name, message] of bombs) {
      const err = await daemon.admin.pushPolicy(name, await UPLOAD_BOMBS[name]()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(CapgateApiError);
      expect(err).toMatchObject({ status: 422, code: 'invalid-policy', message: expect.stringMatching(message) });
    }
    expect(await victim).toMatchObject({ answered: 40, decisions: { allow: 40 }, errorCount: 0 });
    expect((await daemon.admin.health()).status).toBe('ok');
  }, 180_000);
});

describe('a daemon whose deadline ends a spinning policy', () => {
  let daemon: DaemonProcess;
  beforeAll(async () => {
    daemon = await start(daemonConfig(tempDir(), { engine: { limits: { fuel: 1e13, deadlineMs: 500 } } }));
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
  });

  it('memlock then timeout: the worker is terminated, the call is in the audit, and undone', async () => {
    await bind(daemon, 'memlock-then-spin');
    setLimit(target, 1n * MiB, 4n * MiB);
    const r = await decide(daemon, 4n * MiB);
    expect(r).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
    expect(memlockCall(r)).toMatchObject({
      result: 'ok',
      before: { soft: String(1n * MiB), hard: String(4n * MiB) },
      undo: 'undone',
    });
    expect(kernel(target)).toEqual({ soft: String(1n * MiB), hard: String(4n * MiB) });
  }, 120_000);
});

describe('a daemon with the worker-death and divergence seams', () => {
  let daemon: DaemonProcess;
  beforeAll(async () => {
    // The budget is large so that fuel alone decides where each run's call happens (the burns
    // outlast the 100,000-unit slice): with the default 2 ms, a garbage collection before the
    // first call could send memlock-then-burn to a worker, which would then make its call there.
    daemon = await start(daemonConfig(tempDir()), {
      exitWorkerAfterEffect: true,
      bumpReplayedMemlock: true,
      inlineBudgetMs: 1000,
    });
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
  });

  it('memlock in a worker that then dies: the call is in the audit (from the ledger), and undone', async () => {
    await bind(daemon, 'memlock-in-worker');
    setLimit(target, 1n * MiB, 4n * MiB);
    const r = await decide(daemon, 4n * MiB);
    expect(r).toMatchObject({
      decision: 'deny',
      errorKind: 'host-error',
      errorDetail: expect.stringMatching(/worker died/),
    });
    expect(memlockCall(r)).toMatchObject({
      result: 'ok',
      before: { soft: String(1n * MiB), hard: String(4n * MiB) },
      undo: 'undone',
    });
    expect(kernel(target)).toEqual({ soft: String(1n * MiB), hard: String(4n * MiB) });
  }, 120_000);

  it("memlock then a repeated run that diverges: the first run's call is in the audit, and undone", async () => {
    await bind(daemon, 'memlock-then-burn');
    setLimit(target, 1n * MiB, 4n * MiB);
    const r = await decide(daemon, 4n * MiB);
    expect(r).toMatchObject({
      decision: 'deny',
      errorKind: 'host-error',
      errorDetail: expect.stringMatching(/replay diverged/),
    });
    expect(r.capabilityCalls.filter((c) => c.op === 'set-memlock')).toMatchObject([
      { bytes: String(4n * MiB), result: 'ok', undo: 'undone' },
    ]);
    expect(kernel(target)).toEqual({ soft: String(1n * MiB), hard: String(4n * MiB) });
  }, 120_000);
});

describe('kill -9 right after an effect', () => {
  it('leaves an intent that the restart audits as a lost decision, with the limit at the restart, and undoes it', async () => {
    const config = daemonConfig(tempDir(), {
      engine: { limits: { fuel: 1e13, deadlineMs: 120_000 } },
      request: { deadlineMs: 120_000 },
    });
    const first = await start(config);
    await bind(first, 'memlock-then-spin');
    setLimit(target, 1n * MiB, 4n * MiB);
    // The policy sets the limit, then spins until its (long) deadline: the moment between the
    // effect and the decision record, held open. The kernel says when the effect has happened.
    const pending = hostileVm.requests({
      socketPath: first.requestSocket,
      targetPid: target,
      bytes: 4n * MiB,
      total: 1,
      concurrency: 1,
    });
    await waitFor(() => (kernel(target).soft === String(4n * MiB) ? true : undefined), 'the effect', 4000);
    await first.kill9();
    expect((await pending).errorCount).toBe(1); // never answered

    const second = await spawnDaemon(config);
    try {
      const lost = (await second.admin.queryAudit({ decision: 'deny', limit: 10 })).records.filter(
        (r) => r.reason === 'decision-lost',
      );
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatchObject({
        decision: 'deny',
        errorKind: 'decision-lost',
        requester: { pid: hostileVm.pid },
        vm: { name: 'hostile-vm' },
        targetPid: target,
        bytes: String(4n * MiB),
        policy: { name: 'memlock-then-spin', revision: 1 },
      });
      expect(lost[0]!.capabilityCalls).toEqual([
        {
          op: 'set-memlock',
          pid: target,
          bytes: String(4n * MiB),
          result: 'ok',
          before: { soft: String(1n * MiB), hard: String(4n * MiB) },
          limitAtRecovery: { soft: String(4n * MiB), hard: String(4n * MiB) },
          undo: 'undone',
        },
      ]);
      expect(kernel(target)).toEqual({ soft: String(1n * MiB), hard: String(4n * MiB) });
    } finally {
      await second.stop();
    }
  }, 240_000);
});

describe('a restart while a bound policy recompiles', () => {
  it('a compile launcher killed -9 during the recompile: it is asked again after the Retry-After, and the policy serves', async () => {
    const config = daemonConfig(tempDir());
    const first = await start(config);
    await bind(first, 'memlock-cap');
    await first.stop();
    const second = await spawnDaemon(config);
    try {
      const compile = await waitForProbe(
        () => below(second.pid, 'compile-main')[0],
        "the start-up recompile's compile process",
      );
      // Its parent: the compile launcher.
      const launcher = readProc(compile)?.ppid;
      expect(below(second.pid, 'launcher-main')).toEqual([launcher]);
      process.kill(launcher!, 'SIGKILL');
      await waitForProbe(() => (readProc(compile) === null ? true : undefined), 'its compile process to die with it');
      // Refused "try again" (not a verdict on the policy), asked again, and loaded: before, the
      // binding denied host-error until an admin bound it again.
      const health = await waitForProbe(async () => {
        const h = await second.admin.health();
        return h.detail?.policiesLoaded === 1 ? h : undefined;
      }, 'the bound policy to be loaded after the retry');
      expect(health.status).toBe('ok');
      expect(second.logs.some((l) => /could not be compiled at start .*trying again/.test(String(l.msg)))).toBe(true);
      const { reason } = await victimVm.requestOnce(second.requestSocket, victimTarget, 2n * MiB);
      expect(reason).toMatch(/^allow/);
      expect(below(second.pid, 'launcher-main')).not.toContain(launcher);
    } finally {
      await second.stop();
    }
  }, 240_000);

  it('answers a request for it that cannot wait long enough with 503 not-ready and Retry-After, then serves it', async () => {
    const config = daemonConfig(tempDir(), { request: { deadlineMs: 300 } });
    const first = await start(config);
    await bind(first, 'memlock-cap');
    await first.stop();
    const second = await spawnDaemon(config);
    try {
      // The compile process starts and loads the upload pipeline (seconds) before the policy is ready.
      const early = await victimVm.requests({
        socketPath: second.requestSocket,
        targetPid: victimTarget,
        bytes: 2n * MiB,
        total: 1,
        concurrency: 1,
      });
      expect(early.errors[0]).toMatch(
        /CapgateApiError 503 not-ready \(retry after 1 s\): policy memlock-cap revision 1 is still being compiled/,
      );
      await waitFor(
        async () =>
          (
            await victimVm.requests({
              socketPath: second.requestSocket,
              targetPid: victimTarget,
              bytes: 2n * MiB,
              total: 1,
              concurrency: 1,
            })
          ).decisions.allow === 1
            ? true
            : undefined,
        'an allow',
        2400,
      );
    } finally {
      await second.stop();
    }
  }, 240_000);
});
