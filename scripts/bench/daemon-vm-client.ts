// One "VM" of the daemon bench, as a separate process: it is registered as the VM's root, spawns
// its own target (its "QEMU"), and drives raw HTTP connections against the request socket.
// Driven over IPC by scripts/bench/daemon.ts: first it reports its target, then, on "go", runs.
import { spawn } from 'node:child_process';
import { REQUEST_ROUTES } from '../../runtime/wire/index.ts';
import { buildJsonPost, RawHttpConnection } from './raw-http-client.ts';

export type VmClientCommand =
  | { cmd: 'go'; socketPath: string; connections: number; perConnection: number; bytes: string }
  | { cmd: 'exit' };

export type VmClientMessage =
  | { kind: 'ready'; targetPid: number }
  | { kind: 'done'; samplesUs: number[]; notAllowed: Record<string, number> }
  | { kind: 'failed'; error: string };

const send = (m: VmClientMessage): void => void process.send!(m);
const target = spawn('sleep', ['600'], { stdio: 'ignore' });

async function go(c: Extract<VmClientCommand, { cmd: 'go' }>): Promise<void> {
  const request = buildJsonPost(REQUEST_ROUTES.setMemlock.path, { targetPid: target.pid, bytes: c.bytes });
  const pool = await Promise.all(Array.from({ length: c.connections }, () => RawHttpConnection.connect(c.socketPath)));
  const samplesUs: number[] = [];
  const notAllowed: Record<string, number> = {};
  await Promise.all(
    pool.map(async (conn) => {
      for (let i = 0; i < c.perConnection; i++) {
        const t0 = process.hrtime.bigint();
        const a = await conn.send(request);
        samplesUs.push(Number(process.hrtime.bigint() - t0) / 1000);
        if (a.status !== 200) throw new Error(`the daemon answered ${a.status}: ${a.body}`);
        const d = JSON.parse(a.body) as { decision: string; reason: string };
        if (d.decision !== 'allow') notAllowed[d.reason] = (notAllowed[d.reason] ?? 0) + 1;
      }
    }),
  );
  for (const conn of pool) conn.close();
  send({ kind: 'done', samplesUs, notAllowed });
}

process.on('message', (m: VmClientCommand) => {
  if (m.cmd === 'go')
    go(m).catch((err: unknown) => send({ kind: 'failed', error: err instanceof Error ? err.message : String(err) }));
  else {
    target.kill('SIGKILL');
    process.exit(0);
  }
});
// The bench went away without saying "exit": do not leave the target behind.
process.on('disconnect', () => {
  target.kill('SIGKILL');
  process.exit(0);
});
target.once('spawn', () => send({ kind: 'ready', targetPid: target.pid! }));
