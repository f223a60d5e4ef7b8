// Bench section "daemon": end-to-end decisions over the request socket of a real daemon process
// (kernel identity, VM resolution, fair scheduler, worker evaluation with real prlimit, audit
// group commit, HTTP), with 1 and 16 clients on persistent connections, beside the in-process
// engine figure for the same policy and request, measured in the same run.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CapgateAdminClient, CapgateRequestClient } from '../../runtime/client/index.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { validateVmRegistration } from '../../runtime/identity/index.ts';
import { printTable, sample, type BenchRow } from './table.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const POLICY = path.join(ROOT, 'guest-examples/assemblyscript/build/memlock-cap.wasm');
const BYTES = 4n * 1024n * 1024n; // below the default 8 MiB hard limit: a real, permitted prlimit

async function startDaemon(dir: string): Promise<{ child: ChildProcess; admin: string; request: string }> {
  const config = { runDir: path.join(dir, 'run'), stateDir: path.join(dir, 'state'), log: { level: 'warn' } };
  const child = spawn(process.execPath, ['--import', path.join(ROOT, 'runtime/bootstrap/register.mjs'), path.join(ROOT, 'runtime/daemon/main.ts'), '--json', JSON.stringify(config)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const admin = path.join(dir, 'run', 'admin.sock');
  const client = new CapgateAdminClient({ socketPath: admin, timeoutMs: 2000 });
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the daemon exited with ${child.exitCode}`);
    try {
      await client.health();
      break;
    } catch {
      if (i > 600) throw new Error('the daemon did not come up within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  client.close();
  return { child, admin, request: path.join(dir, 'run', 'request.sock') };
}

/** `clients` persistent connections sending `perClient` requests each; per-request µs and wall time. */
async function socketRun(socketPath: string, target: number, clients: number, perClient: number): Promise<{ samples: number[]; seconds: number; notAllowed: Record<string, number> }> {
  const pool = Array.from({ length: clients }, () => new CapgateRequestClient({ socketPath, maxSockets: 1 }));
  for (const c of pool) for (let i = 0; i < 50; i++) await c.setMemlock(target, BYTES); // warm-up
  const samples: number[] = [];
  // Denies under overload (e.g. the 100 ms evaluation deadline) are real outcomes: counted, not fatal.
  const notAllowed: Record<string, number> = {};
  const t0 = process.hrtime.bigint();
  await Promise.all(
    pool.map(async (c) => {
      for (let i = 0; i < perClient; i++) {
        const s = process.hrtime.bigint();
        const d = await c.setMemlock(target, BYTES);
        samples.push(Number(process.hrtime.bigint() - s) / 1000);
        if (d.decision !== 'allow') notAllowed[d.reason] = (notAllowed[d.reason] ?? 0) + 1;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const c of pool) c.close();
  return { samples, seconds, notAllowed };
}

export async function run(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-bench-'));
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  await new Promise((r) => sleeper.once('spawn', r));
  const target = sleeper.pid!;
  const daemon = await startDaemon(dir);
  const engine = new Engine({ linuxCapabilities: true });
  try {
    const wasm = fs.readFileSync(POLICY);
    const admin = new CapgateAdminClient({ socketPath: daemon.admin, timeoutMs: 600_000 });
    await admin.pushPolicy('memlock-cap', wasm);
    await admin.bind('set-memlock', { policy: 'memlock-cap' });
    // This bench process is the "VM": its root pid anchors it; the sleeper is its QEMU.
    const reg = validateVmRegistration({ identity: { uuid: '6f1c1f7e-5d0b-4c8e-9a51-0c5b8f1e2a10', name: 'bench-vm', id: 1, labels: [['memory-bytes', String(1n << 30n)]] }, anchor: { rootPid: process.pid } });
    if (!reg.ok) throw new Error(reg.error);
    await admin.registerVm(reg.vm);
    admin.close();

    const compiled = await engine.compile(wasm);
    if (!compiled.ok) throw new Error(compiled.message);
    const sha = compiled.policy.sha256;
    const request = { operation: 'set-memlock' as const, requesterPid: process.pid, requesterUid: 0, targetPid: target, bytes: BYTES };
    const engineSamples = await sample(async () => {
      const o = await engine.evaluate(sha, request, { kind: 'linux', scope: reg.vm });
      if (o.decision !== 'allow') throw new Error(`engine: ${o.reason}`);
    }, 2000);

    const one = await socketRun(daemon.request, target, 1, 2000);
    const sixteen = await socketRun(daemon.request, target, 16, 500);

    const rows: BenchRow[] = [
      { name: 'engine.evaluate in-process (1 at a time)', samplesUs: engineSamples },
      { name: 'request socket, 1 client', samplesUs: one.samples },
      { name: 'request socket, 16 clients', samplesUs: sixteen.samples },
    ];
    printTable('daemon: end-to-end set-memlock decisions (real prlimit, audited)', rows, 'engine.evaluate in-process (1 at a time)');
    console.log('');
    console.log(`throughput, 1 client:   ${Math.round(one.samples.length / one.seconds)} decisions/s`);
    console.log(`throughput, 16 clients: ${Math.round(sixteen.samples.length / sixteen.seconds)} decisions/s`);
    for (const [label, r] of [['1 client', one], ['16 clients', sixteen]] as const) {
      if (Object.keys(r.notAllowed).length > 0) console.log(`not allowed (${label}): ${JSON.stringify(r.notAllowed)}`);
    }
    console.log('targets: p50 <= 300 µs on a persistent connection, >= 3,000 decisions/s (2 cores; load from other processes shows up here)');
  } finally {
    await engine.close();
    daemon.child.kill('SIGTERM');
    await new Promise((r) => daemon.child.once('exit', r));
    sleeper.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
