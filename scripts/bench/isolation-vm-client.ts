// One "VM" of the isolation bench, as a separate process (registered as the VM's root, with its
// own target process): it either measures (`run`: one connection, one request at a time, back to
// back or one every `intervalUs`) or loads the daemon (`storm`: several connections, back to back,
// until `stop`).
// Driven over IPC by scripts/bench/isolation.ts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { REQUEST_ROUTES } from '../../runtime/wire/index.ts';
import { buildJsonPost, RawHttpConnection } from './raw-http-client.ts';

export type IsolationClientCommand =
  /** `intervalUs`: send one request every that many µs (an open loop, as a VM's occasional
   * requests come), else back to back (the client itself saturates what serves it). */
  | {
      cmd: 'run';
      socketPath: string;
      count: number;
      bytes: string;
      intervalUs?: number;
      /** The daemon's pid: trace each request (`trace` in `ran`; CAPGATE_BENCH_TRACE_DIR). */
      tracePid?: number;
    }
  | { cmd: 'storm'; socketPath: string; connections: number; bytes: string }
  | { cmd: 'stop' }
  | { cmd: 'exit' };

export type IsolationClientMessage =
  | { kind: 'ready'; targetPid: number }
  | {
      kind: 'ran';
      samplesUs: number[];
      outcomes: Record<string, number>;
      /** With tracePid, per request (ms; times on CLOCK_MONOTONIC): [counted from, sent, answered,
       * then the daemon's main thread's schedstat before and after: run time, run-queue wait]. */
      trace?: number[];
    }
  | { kind: 'storming' }
  | { kind: 'stopped'; sent: number; outcomes: Record<string, number> }
  | { kind: 'failed'; error: string };

const send = (m: IsolationClientMessage): void => void process.send!(m);
const target = spawn('sleep', ['600'], { stdio: 'ignore' });
let storming = false;

/** "allow", "deny:<reason>", "paced" (429 vm-rate-limited: held back for its VM's share) or "<status>" of one answer. */
function outcomeOf(a: { status: number; body: string }): string {
  if (a.status === 429) return 'paced';
  if (a.status !== 200) return String(a.status);
  const d = JSON.parse(a.body) as { decision: string; reason: string };
  return d.decision === 'allow' ? 'allow' : `deny:${d.reason}`;
}

async function run(c: Extract<IsolationClientCommand, { cmd: 'run' }>): Promise<void> {
  const request = buildJsonPost(REQUEST_ROUTES.setMemlock.path, { targetPid: target.pid, bytes: c.bytes });
  const conn = await RawHttpConnection.connect(c.socketPath);
  const samplesUs: number[] = [];
  const outcomes: Record<string, number> = {};
  const trace: number[] | undefined = c.tracePid !== undefined ? [] : undefined;
  const schedstat = `/proc/${c.tracePid}/task/${c.tracePid}/schedstat`;
  /** The daemon's main thread so far: [time on a CPU, time runnable waiting for one] (ms). */
  const sched = (): [number, number] => {
    const f = fs.readFileSync(schedstat, 'utf8').split(' ');
    return [Number(f[0]) / 1e6, Number(f[1]) / 1e6];
  };
  const start = process.hrtime.bigint();
  for (let i = 0; i < c.count; i++) {
    let t0 = process.hrtime.bigint();
    if (c.intervalUs !== undefined) {
      const due = start + BigInt(Math.round(i * c.intervalUs * 1000));
      if (due > t0) {
        await new Promise((r) => setTimeout(r, Number(due - t0) / 1e6));
        t0 = process.hrtime.bigint();
      } else {
        // The previous answer came after this request was due: the wait for it is this one's
        // latency too (else a stall would show in one sample only: coordinated omission). A
        // timer of ours that fired late is not the daemon's doing, and is not counted.
        t0 = due;
      }
    }
    const before = trace !== undefined ? sched() : undefined;
    const sentAt = process.hrtime.bigint();
    const a = await conn.send(request);
    const answeredAt = process.hrtime.bigint();
    samplesUs.push(Number(answeredAt - t0) / 1000);
    if (trace !== undefined)
      trace.push(Number(t0) / 1e6, Number(sentAt) / 1e6, Number(answeredAt) / 1e6, ...before!, ...sched());
    const o = outcomeOf(a);
    outcomes[o] = (outcomes[o] ?? 0) + 1;
  }
  conn.close();
  send({ kind: 'ran', samplesUs, outcomes, ...(trace !== undefined ? { trace } : {}) });
}

async function storm(c: Extract<IsolationClientCommand, { cmd: 'storm' }>): Promise<void> {
  const request = buildJsonPost(REQUEST_ROUTES.setMemlock.path, { targetPid: target.pid, bytes: c.bytes });
  const pool = await Promise.all(Array.from({ length: c.connections }, () => RawHttpConnection.connect(c.socketPath)));
  const outcomes: Record<string, number> = {};
  let sent = 0;
  storming = true;
  let first = true;
  await Promise.all(
    pool.map(async (conn) => {
      while (storming) {
        const a = await conn.send(request);
        sent++;
        const o = outcomeOf(a);
        outcomes[o] = (outcomes[o] ?? 0) + 1;
        if (first) {
          first = false;
          send({ kind: 'storming' });
        }
      }
    }),
  );
  for (const conn of pool) conn.close();
  send({ kind: 'stopped', sent, outcomes });
}

process.on('message', (m: IsolationClientCommand) => {
  const fail = (err: unknown): void =>
    send({ kind: 'failed', error: err instanceof Error ? err.message : String(err) });
  if (m.cmd === 'run') run(m).catch(fail);
  else if (m.cmd === 'storm') storm(m).catch(fail);
  else if (m.cmd === 'stop') storming = false;
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
