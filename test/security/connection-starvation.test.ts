// Attack: a local user in no VM opens every connection the request socket allows and keeps them
// busy with keep-alive health requests, so no VM can get a connection for its own requests.
// Peers in no VM now get one answer per connection and share a small budget; the rest of the
// socket is reserved for VMs. Real daemon, real uid 65534 attacker, real VM process.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonConfig, spawnDaemon, type DaemonProcess } from '../daemon/helpers/daemon-process.ts';
import { asPolicy, vmFor, waitFor } from '../daemon/helpers/fixtures.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { VmAgent } from '../daemon/helpers/vm-agent-handle.ts';
import { killGroup, spawnAsNobody } from './support/nobody.ts';

const HOG = fileURLToPath(new URL('./support/hog-connections.mjs', import.meta.url));
const MAX_CONNECTIONS = 64;

interface HogStats {
  open: number;
  connects: number;
  answers: number;
  reusedConnections: number;
  closedByDaemon: number;
  errors: number;
}

let daemon: DaemonProcess;
let agent: VmAgent;
let target: number;
let hog: ChildProcess | undefined;
let latest: HogStats | undefined;

beforeAll(async () => {
  const dir = tempDir();
  fs.chmodSync(dir, 0o755); // uid 65534 must reach the request socket, as any local user can
  daemon = await spawnDaemon(daemonConfig(dir, { http: { maxConnections: MAX_CONNECTIONS } }));
  agent = await VmAgent.start();
  target = await agent.spawnTarget();
  await daemon.admin.registerVm(vmFor(agent.pid, 'victim', [['memory-bytes', String(1024 ** 3)]]));
  await daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
  await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
});

afterAll(async () => {
  await killGroup(hog);
  await agent?.stop();
  await daemon?.stop();
  removeTempDirs();
});

describe('a local user in no VM holding every connection of the request socket', () => {
  it('no longer starves a VM: the VM is answered, the hog never keeps a connection past one answer', async () => {
    hog = spawnAsNobody([process.execPath, HOG, daemon.requestSocket, String(MAX_CONNECTIONS)]);
    let out = '';
    hog.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      const last = lines.at(-1);
      if (last) latest = JSON.parse(last) as HogStats;
    });
    // The hog has tried every connection and been answered on its sockets: it holds what it can.
    await waitFor(
      () => (latest !== undefined && latest.connects >= MAX_CONNECTIONS && latest.answers >= 8 ? true : undefined),
      'the hog to fill the socket',
    );
    const during = await agent.requests({
      socketPath: daemon.requestSocket,
      targetPid: target,
      bytes: 4096n,
      total: 20,
      concurrency: 4,
    });
    expect(during.errors).toEqual([]);
    expect(during.reasons).toEqual({ 'allow:': 20 });
    // The hog was answered (it is served, not locked out) but never twice on one connection.
    expect(latest!.answers).toBeGreaterThan(0);
    expect(latest!.reusedConnections).toBe(0);
    const health = await daemon.admin.health();
    expect(health.status).toBe('ok');
  }, 120_000);
});

describe('the budgets', () => {
  it('are documented beside the socket group and mode', () => {
    const readme = fs.readFileSync(path.join(fileURLToPath(new URL('../../', import.meta.url)), 'SECURITY.md'), 'utf8');
    for (const key of [
      'request.socketGroup',
      'request.socketMode',
      'request.connectionsPerVm',
      'request.connectionsPerUid',
      'request.connectionsOutsideVms',
      'http.maxConnections',
    ])
      expect(readme).toContain(key);
  });
});
