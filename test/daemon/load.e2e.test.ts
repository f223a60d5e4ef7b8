// Load against a real daemon process: 32 concurrent clients x 3,500 requests on persistent
// connections, all answered (no errors, no 503s), every decision audited, memory stable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { asPolicy, memlockOf, MiB, rssKiB, vmFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

const CLIENTS = 32;
const PER_CLIENT = 3_500;
// Long enough for V8's heap to reach its working size before memory is compared: on Node 24 the
// daemon grows to it over the first ~30,000 decisions here and then stays flat (measured over
// 190,000), Node 20 reaches it sooner and swings around it. A shorter warm-up counted that
// growth, which is no leak, against the bound below.
const WARMUP_PER_CLIENT = 1_500;

let daemon: DaemonProcess;
let agents: VmAgent[] = [];

beforeAll(async () => {
  // Queues sized for 32 waiting clients of one VM; nothing else differs from the defaults.
  daemon = await spawnDaemon(daemonConfig(tempDir()));
  agents = await Promise.all([VmAgent.start(), VmAgent.start()]);
  await daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
  await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
  for (const [i, a] of agents.entries())
    await daemon.admin.registerVm(vmFor(a.pid, `load-${i}`, [['memory-bytes', String(1024n * MiB)]]));
}, 300_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await daemon?.stop();
  removeTempDirs();
});

describe('load', () => {
  it(`${CLIENTS} clients x ${PER_CLIENT} requests from two VMs: all allowed, all audited, memory stable`, async () => {
    const targets = await Promise.all(agents.map((a) => a.spawnTarget()));
    const run = (perClient: number) =>
      Promise.all(
        agents.map((a, i) =>
          a.requests({
            socketPath: daemon.requestSocket,
            targetPid: targets[i]!,
            bytes: 4n * MiB,
            total: (perClient * CLIENTS) / agents.length,
            concurrency: CLIENTS / agents.length,
          }),
        ),
      );
    const seqBefore = (await daemon.admin.queryAudit({ limit: 1 })).records[0]?.seq ?? 0;

    const warm = await run(WARMUP_PER_CLIENT);
    const rssAfterWarmup = rssKiB(daemon.pid);
    const main = await run(PER_CLIENT - WARMUP_PER_CLIENT);
    const rssAfter = rssKiB(daemon.pid);

    const reports = [...warm, ...main];
    const answered = reports.reduce((n, r) => n + r.answered, 0);
    expect(reports.flatMap((r) => r.errors)).toEqual([]);
    expect(answered).toBe(CLIENTS * PER_CLIENT);
    expect(reports.every((r) => Object.keys(r.decisions).join() === 'allow')).toBe(true);
    for (const t of targets) expect(memlockOf(t).hard).toBe(String(4n * MiB));

    const newest = (await daemon.admin.queryAudit({ limit: 1 })).records[0]!;
    expect(newest.seq - seqBefore).toBe(CLIENTS * PER_CLIENT);
    const metrics = await daemon.admin.metrics();
    expect(metrics).toContain(
      `capgate_decisions_total{policy="memlock-cap",decision="allow",error_kind=""} ${CLIENTS * PER_CLIENT}`,
    );
    expect(metrics).not.toMatch(/capgate_requests_rejected_total\{/);
    // Group commit at work: fewer commits than records.
    const commits = Number(/capgate_audit_batch_records_count (\d+)/.exec(metrics)?.[1]);
    expect(commits).toBeLessThan(CLIENTS * PER_CLIENT);
    // 64,000 decisions after warm-up may not grow the daemon by more than 64 MiB.
    expect(rssAfter - rssAfterWarmup).toBeLessThan(64 * 1024);
    console.log(
      `load: rss ${Math.round(rssAfterWarmup / 1024)} -> ${Math.round(rssAfter / 1024)} MiB, ${commits} audit commits for ${CLIENTS * PER_CLIENT} records`,
    );
  }, 600_000);
});
