// `audit.durability: full` against a real daemon process: the audit's fdatasyncs run on other
// threads than the main one (strace shows every sync system call of every thread), an answer
// never precedes its record's fdatasync, and a failed fdatasync fails the decision closed, as a
// failed audit commit does: not answered, its effect undone, the daemon up and well afterwards.
// (Every answered decision surviving a kill -9 with 'full': persistence.e2e.test.ts.)
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { libc, RLIMIT_MEMLOCK } from '../../runtime/os/libc.ts';
import { asPolicy, memlockOf, MiB, vmFor, waitFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

let agent: VmAgent;

beforeAll(async () => {
  agent = await VmAgent.start();
});

afterAll(async () => {
  await agent?.stop();
  removeTempDirs();
});

const FULL = { audit: { durability: 'full' as const } };
/** Enough for the WAL to pass the checkpoint worker's threshold (1,000 pages) a few times. */
const DECISIONS = 6000;

async function withPolicy(d: DaemonProcess, vm: string): Promise<void> {
  await d.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
  await d.admin.bind('set-memlock', { policy: 'memlock-cap' });
  await d.admin.registerVm(vmFor(agent.pid, vm, [['memory-bytes', String(1024n * MiB)]]));
}

/** The process strace started (its child): the daemon, whose main thread's tid is its pid. */
function childOf(parent: number): number {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no child of ${parent}`);
}

describe("audit.durability 'full'", () => {
  it('makes the audit durable with fdatasyncs on other threads, never on the main thread', async () => {
    const dir = tempDir();
    const trace = path.join(dir, 'syncs.trace');
    const d = await spawnDaemon(daemonConfig(dir, FULL), {
      wrap: [
        'strace',
        '-f',
        '--seccomp-bpf',
        '-qq',
        '-o',
        trace,
        '-e',
        'trace=fsync,fdatasync,syncfs,sync_file_range,sync',
      ],
    });
    const daemonPid = childOf(d.pid);
    await withPolicy(d, 'vm-strace');
    const target = await agent.spawnTarget();
    // Syncs of the start-up (the database's creation and migrations) are not the decisions':
    // only what is traced from here on counts.
    const from = fs.readFileSync(trace, 'utf8').length;
    const report = await agent.requests({
      socketPath: d.requestSocket,
      targetPid: target,
      bytes: 4n * MiB,
      total: DECISIONS,
      concurrency: 8,
      collectIds: true,
    });
    expect(report.decisions).toEqual({ allow: DECISIONS });
    // The records are in the audit (read through the daemon, which ingests on read).
    for (const id of report.ids.filter((_, k) => k % 500 === 0))
      expect((await d.admin.getAuditRecord(id)).record).toMatchObject({ decisionId: id, decision: 'allow' });
    // The WAL was checkpointed and started again from its beginning meanwhile: the first write to
    // a restarted log syncs its header, and that write was the checkpoint worker's.
    const metrics = await d.admin.metrics();
    const done = Number(/capgate_wal_checkpoints_total\{result="done"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(done).toBeGreaterThan(0);
    // Killed as is: a clean stop checkpoints on the main thread, which is not the decisions' work.
    process.kill(daemonPid, 'SIGKILL');
    await d.exited;
    const lines = fs
      .readFileSync(trace, 'utf8')
      .slice(from)
      .split('\n')
      .filter((l) => /^\d+ +(fsync|fdatasync|syncfs|sync_file_range|sync)\(/.test(l));
    const byThread = new Map<number, number>();
    for (const l of lines) byThread.set(Number(l.split(' ')[0]), (byThread.get(Number(l.split(' ')[0])) ?? 0) + 1);
    expect(byThread.get(daemonPid) ?? 0, lines.filter((l) => l.startsWith(`${daemonPid} `)).join('\n')).toBe(0);
    // One fdatasync per group commit: fewer than the decisions, far more than a few.
    const syncs = lines.filter((l) => l.includes('fdatasync(')).length;
    expect(syncs).toBeGreaterThan(10);
    expect(byThread.size).toBeGreaterThan(0);
  }, 300_000);

  describe('with a seam on the journal fdatasync', () => {
    let dir: string;
    let d: DaemonProcess;
    let target: number;
    const failFile = (): string => path.join(dir, 'fail-syncs');
    const holdFile = (): string => path.join(dir, 'hold-syncs');

    beforeAll(async () => {
      dir = tempDir();
      d = await spawnDaemon(daemonConfig(dir, FULL), {
        scope: 'file',
        seams: { journalSyncFailsWhile: failFile(), journalSyncHeldWhile: holdFile() },
      });
      await withPolicy(d, 'vm-seam');
      target = await agent.spawnTarget();
    }, 300_000);

    afterAll(async () => {
      await d?.stop();
    });

    it('answers no decision before its fdatasync returned', async () => {
      fs.writeFileSync(holdFile(), '');
      let answered = false;
      const pending = agent.requestOnce(d.requestSocket, target, 6n * MiB).then((r) => ((answered = true), r));
      await waitFor(() => (fs.existsSync(`${holdFile()}.held`) ? true : undefined), 'an fdatasync to be held');
      // The daemon answers the admin socket meanwhile: its event loop turns, and still no answer.
      await d.admin.health();
      expect(answered).toBe(false);
      fs.rmSync(holdFile());
      const r = await pending;
      expect(r.reason).toBe('allow:');
      expect((await d.admin.getAuditRecord(r.id)).record).toMatchObject({ decision: 'allow' });
    }, 60_000);

    it('a failed fdatasync fails the decision closed, as a failed audit commit does, and the daemon goes on', async () => {
      // A fresh target whose soft limit is below its hard one: the policy's raise of it can be
      // undone without CAP_SYS_RESOURCE.
      target = await agent.spawnTarget();
      const r = libc().prlimit(target, RLIMIT_MEMLOCK, { soft: 1n * MiB, hard: 8n * MiB });
      expect(r.ok).toBe(true);
      const health = (await d.admin.health()).status;
      fs.writeFileSync(failFile(), '');
      const failed = await agent.requests({
        socketPath: d.requestSocket,
        targetPid: target,
        bytes: 8n * MiB,
        total: 1,
        concurrency: 1,
      });
      expect(failed.answered).toBe(0);
      expect(failed.errors.join('\n')).toMatch(/500 internal.*could not be audited.*EIO/);
      // Not answered, so not allowed: the limit the policy set is undone.
      expect(memlockOf(target)).toEqual({ soft: String(1n * MiB), hard: String(8n * MiB) });
      const logged = await waitFor(
        () => d.logs.find((l) => String(l.msg).startsWith('a decision could not be audited')),
        'the audit failure in the log',
      );
      const lost = (logged.record as { decisionId: string }).decisionId;
      fs.rmSync(failFile());
      expect((await d.admin.health()).status).toBe(health);
      const after = await agent.requestOnce(d.requestSocket, target, 8n * MiB);
      expect(after.reason).toBe('allow:');
      expect(memlockOf(target)).toEqual({ soft: String(8n * MiB), hard: String(8n * MiB) });
      // The failed decision's record was cut off the journal: not in the audit, now or after a restart.
      await expect(d.admin.getAuditRecord(lost)).rejects.toMatchObject({ status: 404, code: 'not-found' });
      expect((await d.admin.getAuditRecord(after.id)).record).toMatchObject({ decision: 'allow' });
      // The daemon's log has the whole record, with the undo of its call.
      const record = logged.record as { decision: string; capabilityCalls: Array<{ op: string }> };
      expect(record.decision).toBe('allow');
      expect(record.capabilityCalls.find((c) => c.op === 'set-memlock')).toMatchObject({
        bytes: String(8n * MiB),
        result: 'ok',
        before: { soft: String(1n * MiB), hard: String(8n * MiB) },
        undo: 'undone',
      });
    }, 60_000);
  });
});
