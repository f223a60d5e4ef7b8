// State across restarts of a real daemon process: graceful stop, restart, kill -9 during a
// burst of requests and during a push. Nothing half-written; every answered decision audited.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { asPolicy, memlockOf, MiB, sha256, vmFor, waitFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';
import type { DaemonConfigInput } from '../../runtime/daemon/config.ts';

let dir: string;
let config: DaemonConfigInput;
let daemon: DaemonProcess | undefined;
let agent: VmAgent;
let target: number;
let firstDecision: string;
const dbFile = (): string => path.join(dir, 'state', 'capgate.db');
/** Each test hands its daemon on to the next one: killed after the file, not after its test. */
const startDaemon = (): Promise<DaemonProcess> => spawnDaemon(config, { scope: 'file' });

beforeAll(async () => {
  dir = tempDir();
  config = daemonConfig(dir);
  agent = await VmAgent.start();
  target = await agent.spawnTarget();
});

afterAll(async () => {
  await agent?.stop();
  if (daemon && daemon.child.exitCode === null) await daemon.stop();
  removeTempDirs();
});

const ask = (d: DaemonProcess): Promise<{ reason: string; id: string }> =>
  agent.requestOnce(d.requestSocket, target, 4n * MiB);

/** Opens the database beside the daemon (WAL allows a concurrent reader) and checks invariants. */
function checkDatabase(): { decisionIds: Set<string>; revisions: number } {
  const db = new Database(dbFile(), { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    const revs = db.prepare('SELECT policy, revision, sha256, size, bytes FROM policy_revisions').all() as Array<{
      policy: string;
      revision: number;
      sha256: string;
      size: number;
      bytes: Buffer;
    }>;
    for (const r of revs) {
      expect(sha256(r.bytes), `${r.policy}/${r.revision}`).toBe(r.sha256);
      expect(r.bytes.length).toBe(r.size);
      const next = db.prepare('SELECT next_revision FROM policies WHERE name = ?').get(r.policy) as {
        next_revision: number;
      };
      expect(next.next_revision).toBeGreaterThan(r.revision);
    }
    const ids = new Set(
      (db.prepare('SELECT decision_id FROM audit').all() as Array<{ decision_id: string }>).map((r) => r.decision_id),
    );
    return { decisionIds: ids, revisions: revs.length };
  } finally {
    db.close();
  }
}

describe('persistence', () => {
  it('creates the admin socket 0600 and the request socket 0666 by default', async () => {
    daemon = await startDaemon();
    expect(fs.statSync(daemon.adminSocket).mode & 0o777).toBe(0o600);
    expect(fs.statSync(daemon.requestSocket).mode & 0o777).toBe(0o666);
  });

  it('a graceful restart keeps policies, bindings, VMs and audit, and recompiles the bound policy', async () => {
    const d1 = daemon!;
    await d1.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
    await d1.admin.bind('set-memlock', { policy: 'memlock-cap' });
    const reg = vmFor(agent.pid, 'vm-p', [['memory-bytes', String(64n * MiB)]]);
    await d1.admin.registerVm(reg);
    const first = await ask(d1);
    expect(first.reason).toBe('allow:');
    firstDecision = first.id;
    const before = {
      policies: await d1.admin.listPolicies(),
      bindings: await d1.admin.listBindings(),
      vms: await d1.admin.listVms(),
    };

    expect(await d1.stop()).toEqual({ code: 0, signal: null });
    expect(d1.logs.map((l) => l.msg)).toContain('capgate stopped');

    const d2 = (daemon = await startDaemon());
    // The sockets listen at once; the bound policy recompiles in the compile process meanwhile.
    expect(d2.logs.find((l) => l.msg === 'capgate ready')).toMatchObject({ vms: 1 });
    expect(
      await waitFor(
        () => d2.logs.find((l) => l.msg === 'bound policies loaded'),
        'the bound policy to recompile',
        2400,
      ),
    ).toMatchObject({ policiesLoaded: 1 });
    expect(await d2.admin.listPolicies()).toEqual(before.policies);
    expect(await d2.admin.listBindings()).toEqual(before.bindings);
    expect(await d2.admin.listVms()).toEqual(before.vms);
    expect((await d2.admin.getAuditRecord(firstDecision)).record).toMatchObject({
      decision: 'allow',
      vm: { uuid: reg.identity.uuid },
    });
    expect((await ask(d2)).reason).toBe('allow:');
    expect(memlockOf(target).hard).toBe(String(4n * MiB));
  }, 300_000);

  // 'full' after 'normal': the daemon is restarted with it, and the tests after this one keep it.
  it.for(['normal', 'full'] as const)(
    'kill -9 during a burst of requests: after restart every answered decision is in the audit (durability %s)',
    { timeout: 300_000 },
    async (durability) => {
      if (durability === 'full') {
        await daemon!.stop();
        config = daemonConfig(dir, { audit: { durability } });
        daemon = await startDaemon();
      }
      const d2 = daemon!;
      const startSeq = (await d2.admin.queryAudit({ limit: 1 })).records[0]!.seq;
      const burst = agent.requests({
        socketPath: d2.requestSocket,
        targetPid: target,
        bytes: 4n * MiB,
        total: 1_000_000,
        concurrency: 16,
        collectIds: true,
      });
      await waitFor(
        async () => ((await d2.admin.queryAudit({ limit: 1 })).records[0]!.seq > startSeq + 500 ? true : undefined),
        '500 decisions',
      );
      await d2.kill9();
      const report = await burst;
      expect(report.answered).toBeGreaterThan(500);
      expect(report.errorCount).toBeGreaterThan(0); // the daemon died under it
      expect(report.decisions).toEqual({ allow: report.answered });

      // Answered decisions not yet ingested are in the audit journal beside the database (0600;
      // 'full' has a second segment); the restarted daemon moves them into it at open, before it
      // serves anything.
      expect(fs.statSync(`${dbFile()}-audit-journal`).mode & 0o777).toBe(0o600);
      if (durability === 'full') expect(fs.statSync(`${dbFile()}-audit-journal-b`).mode & 0o777).toBe(0o600);
      daemon = await startDaemon();
      const { decisionIds } = checkDatabase();
      const missing = report.ids.filter((id) => !decisionIds.has(id));
      expect(missing).toEqual([]);
      expect(decisionIds.has(firstDecision)).toBe(true);

      expect((await ask(daemon)).reason).toBe('allow:');
    },
  );

  it('kill -9 during a push: the revision is stored whole or not at all, and the daemon restarts clean', async () => {
    // How long a push takes in this process, to aim the kills inside it.
    const t0 = performance.now();
    await daemon!.admin.pushPolicy('timing', asPolicy('vfio-only'));
    const pushMs = performance.now() - t0;
    for (const fraction of [0.3, 0.9]) {
      const d = daemon!;
      const push = d.admin.pushPolicy(`killed-${fraction * 10}`, asPolicy('vfio-only')).catch((err: unknown) => err);
      await new Promise((r) => setTimeout(r, pushMs * fraction));
      await d.kill9();
      await push;
      checkDatabase();
      daemon = await startDaemon();
      const list = await daemon.admin.listPolicies();
      for (const p of list.policies) for (const r of p.revisions) expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect((await daemon.admin.getBinding('set-memlock')).binding).toMatchObject({ policy: 'memlock-cap' });
    }
    // And the state is still writable: the same push now completes.
    const again = await daemon!.admin.pushPolicy('killed-9', asPolicy('vfio-only'));
    expect(again.revision.sha256).toBe(sha256(asPolicy('vfio-only')));
    expect((await ask(daemon!)).reason).toBe('allow:');
  }, 400_000);
});
