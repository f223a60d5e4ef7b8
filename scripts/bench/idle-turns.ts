// Bench section "idle-turns": what the daemon's main thread spends on the first speculative run
// after it sat idle, against a warm run. A real daemon (with the idle-trace.ts preload), one VM
// (this process, its target a child), memlock-cap bound; CAPGATE_BENCH_IDLE_ROUNDS rounds (30) of:
// wait CAPGATE_BENCH_IDLE_MS (1200) with nothing asked, one request (the first after idle), then
// WARM requests one every 2 ms (warm). Per run, getrusage(RUSAGE_THREAD) of the main thread: user
// and system time, minor faults, context switches; and its parts (instances made, target checks).
// CAPGATE_BENCH_DAEMON_FLAGS: node/V8 flags for the daemon (e.g. --no-wasm-lazy-compilation).
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../runtime/bootstrap/package-root.ts';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { validateVmRegistration } from '../../runtime/identity/index.ts';
import { REQUEST_ROUTES } from '../../runtime/wire/index.ts';
import { startDaemon } from './daemon.ts';
import { SPAN_FIELDS, type IdleTrace } from './idle-trace.ts';
import { buildJsonPost, RawHttpConnection } from './raw-http-client.ts';

const ROOT = PACKAGE_ROOT;
const POLICY = path.join(ROOT, 'guest-examples/assemblyscript/build/memlock-cap.wasm');
const ROUNDS = Number(process.env.CAPGATE_BENCH_IDLE_ROUNDS ?? 30);
const IDLE_MS = Number(process.env.CAPGATE_BENCH_IDLE_MS ?? 1200);
const WARM = 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run {
  start: number;
  wallMs: number;
  cpuUs: number;
  userUs: number;
  sysUs: number;
  minflt: number;
  majflt: number;
  nvcsw: number;
  nivcsw: number;
  /** Inside it: instances made (µs wall, faults), target checks (µs wall, faults). */
  prepareUs: number;
  prepareFlt: number;
  checkUs: number;
  checkSysUs: number;
  checkFlt: number;
  gcMs: number;
}

export async function run(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-bench-idle-'));
  const traceFile = path.join(dir, 'idle-trace.json');
  const flags = process.env.CAPGATE_BENCH_DAEMON_FLAGS?.split(' ').filter((f) => f !== '') ?? [];
  const daemon = await startDaemon(dir, {
    nodeFlags: [...flags, '--import', path.join(ROOT, 'dist/scripts/bench/idle-trace.js')],
    env: { CAPGATE_IDLE_TRACE: traceFile },
  });
  // The VM: a child process (the daemon refuses its own ancestors as a VM's root) that asks on
  // one connection when told to, its target a child of its own.
  const vm = fork(new URL(import.meta.url).pathname, ['--vm', daemon.request], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const vmReady = new Promise<void>((r) => vm.once('message', () => r()));
  const admin = new CapgateAdminClient({ socketPath: daemon.admin, timeoutMs: 600_000 });
  const firsts: number[] = [];
  const warms: number[] = [];
  try {
    const reg = validateVmRegistration({
      identity: { uuid: '6f1c1f7e-5d0b-4c8e-9a51-0c5b8f1e2d01', name: 'idle', id: 300, labels: [] },
      anchor: { rootPid: vm.pid! },
    });
    if (!reg.ok) throw new Error(reg.error);
    await admin.registerVm(reg.vm);
    await admin.pushPolicy('memlock-cap', fs.readFileSync(POLICY));
    await admin.bind('set-memlock', { policy: 'memlock-cap' });
    await vmReady;
    vm.send('connect');
    await new Promise((r) => vm.once('message', r));
    const ask = (): Promise<void> =>
      new Promise((resolve, reject) => {
        vm.once('message', (m: string) => (m === 'ok' ? resolve() : reject(new Error(m))));
        vm.send('ask');
      });
    for (let i = 0; i < 200; i++) await ask();
    for (let r = 0; r < ROUNDS; r++) {
      await sleep(IDLE_MS);
      firsts.push(Number(process.hrtime.bigint()) / 1e6);
      await ask();
      for (let i = 0; i < WARM; i++) {
        await sleep(2);
        warms.push(Number(process.hrtime.bigint()) / 1e6);
        await ask();
      }
    }
  } finally {
    admin.close();
    vm.kill('SIGKILL');
    daemon.child.kill('SIGTERM');
    await new Promise((r) => daemon.child.once('exit', r));
  }
  const trace = JSON.parse(fs.readFileSync(traceFile, 'utf8')) as IdleTrace;
  fs.rmSync(dir, { recursive: true, force: true });
  const runs = runsOf(trace);
  // The run each request set off: the first run starting after it was sent.
  const pick = (sent: number[]): Run[] =>
    sent.map((t) => runs.find((r) => r.start >= t)).filter((r): r is Run => r !== undefined);
  const first = pick(firsts);
  const warm = pick(warms);
  console.log(
    `\nidle-turns: ${ROUNDS} rounds of ${IDLE_MS} ms idle, then 1 + ${WARM} requests 2 ms apart (flags: ${flags.join(' ') || 'none'})`,
  );
  console.log('medians [p10-p90] per run on the main thread (getrusage RUSAGE_THREAD around InlineRunner.run)');
  const cols: [string, (r: Run) => number][] = [
    ['wall µs', (r) => r.wallMs * 1000],
    ['cpu µs', (r) => r.cpuUs],
    ['user µs', (r) => r.userUs],
    ['sys µs', (r) => r.sysUs],
    ['minflt', (r) => r.minflt],
    ['majflt', (r) => r.majflt],
    ['invol cs', (r) => r.nivcsw],
    ['prepare µs', (r) => r.prepareUs],
    ['prepare flt', (r) => r.prepareFlt],
    ['check µs', (r) => r.checkUs],
    ['check sys µs', (r) => r.checkSysUs],
    ['check flt', (r) => r.checkFlt],
    ['gc ms', (r) => r.gcMs],
  ];
  for (const [name, rs] of [
    ['first after idle', first],
    ['warm', warm],
  ] as const) {
    console.log(
      `${name.padEnd(17)} n=${String(rs.length).padEnd(4)} ` +
        cols.map(([c, f]) => `${c} ${stat(rs.map(f))}`).join('  '),
    );
  }
  if (process.env.CAPGATE_BENCH_IDLE_ALL) for (const r of first) console.log(JSON.stringify(r));
}

function stat(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  const f = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1));
  return `${f(q(0.5))} [${f(q(0.1))}-${f(q(0.9))}]`;
}

function runsOf(trace: IdleTrace): Run[] {
  const s = trace.spans;
  const runs: Run[] = [];
  let prepares: number[][] = [];
  let checks: number[][] = [];
  for (let i = 0; i < s.length; i += SPAN_FIELDS) {
    const row = s.slice(i, i + SPAN_FIELDS);
    const [kind, start, wallMs, userUs, sysUs, minflt, majflt, nvcsw, nivcsw, depth, cpuMs] = row as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    // Spans are written when they end: a run's inner spans (depth > 0) come before it.
    if (kind === 1 && depth > 0) prepares.push(row);
    else if (kind === 2 && depth > 0) checks.push(row);
    else if (kind === 0) {
      let gcMs = 0;
      for (let g = 0; g < trace.gc.length; g += 3)
        gcMs += Math.max(0, Math.min(start + wallMs, trace.gc[g]! + trace.gc[g + 1]!) - Math.max(start, trace.gc[g]!));
      runs.push({
        start,
        wallMs,
        cpuUs: cpuMs * 1000,
        userUs,
        sysUs,
        minflt,
        majflt,
        nvcsw,
        nivcsw,
        prepareUs: prepares.reduce((a, p) => a + p[2]! * 1000, 0),
        prepareFlt: prepares.reduce((a, p) => a + p[5]!, 0),
        checkUs: checks.reduce((a, p) => a + p[2]! * 1000, 0),
        checkSysUs: checks.reduce((a, p) => a + p[4]!, 0),
        checkFlt: checks.reduce((a, p) => a + p[5]!, 0),
        gcMs,
      });
      prepares = [];
      checks = [];
    } else if (depth === 0) {
      prepares = [];
      checks = [];
    }
  }
  return runs;
}

if (process.argv[2] === '--vm') {
  const target = spawn('sleep', ['600'], { stdio: 'ignore' });
  const request = buildJsonPost(REQUEST_ROUTES.setMemlock.path, { targetPid: target.pid, bytes: String(4n << 20n) });
  let conn: RawHttpConnection | undefined;
  process.on('message', (m: string) => {
    if (m === 'connect')
      void RawHttpConnection.connect(process.argv[3]!).then((c) => {
        conn = c;
        process.send!('connected');
      });
    else if (m === 'ask')
      void conn!.send(request).then(
        (a) => process.send!(a.status === 200 ? 'ok' : `the daemon answered ${a.status}: ${a.body}`),
        (e: Error) => process.send!(String(e)),
      );
  });
  process.on('disconnect', () => {
    target.kill('SIGKILL');
    process.exit(0);
  });
  process.send!('ready');
}
