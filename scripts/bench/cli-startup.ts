// Bench section "cli": how long the client commands take from exec to exit, against a real
// daemon, beside `node -e 0` measured in the same interleaved rounds (the machine's load moves
// every row alike); then `capgate serve`'s time until its request socket accepts, with 10
// policies stored (one bound: the contract has one operation) beside an empty state.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CAPGATE_BIN, distinctPolicies, pushPolicies, serveIn } from './footprint.ts';
import { printTable, summarize, type BenchRow } from './table.ts';

const ROUNDS = 30;
const SERVE_ROUNDS = 5;
const BASELINE = 'node -e 0';
const TARGET_MS = 150;
const SERVE_TARGET_MS = 500;

/** Wall time of one process from spawn to exit, in µs; fails on an unexpected exit code. */
function timed(args: string[], expectCode: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (code !== expectCode) reject(new Error(`${args.join(' ')} exited ${code} (expected ${expectCode}): ${err}`));
      else resolve(us);
    });
  });
}

export async function run(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-bench-cli-'));
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  try {
    await new Promise((r) => sleeper.once('spawn', r));
    const daemon = await serveIn(path.join(dir, 'cli'));
    const cases: Array<{ name: string; args: string[]; code: number }> = [
      { name: BASELINE, args: ['-e', '0'], code: 0 },
      { name: 'capgate --version', args: [CAPGATE_BIN, '--version'], code: 0 },
      // This process is in no VM: the daemon answers deny (exit 1) after the full round trip.
      {
        name: 'capgate request set-memlock',
        args: [
          CAPGATE_BIN,
          'request',
          'set-memlock',
          '--pid',
          String(sleeper.pid),
          '--bytes',
          '4Mi',
          '--socket',
          daemon.request,
        ],
        code: 1,
      },
      { name: 'capgate policy ls', args: [CAPGATE_BIN, 'policy', 'ls', '--socket', daemon.admin], code: 0 },
      { name: 'capgate audit ls', args: [CAPGATE_BIN, 'audit', 'ls', '--socket', daemon.admin], code: 0 },
      { name: 'capgate health', args: [CAPGATE_BIN, 'health', '--socket', daemon.request], code: 0 },
    ];
    const samples = new Map(cases.map((c) => [c.name, [] as number[]]));
    try {
      for (const c of cases) await timed(c.args, c.code); // warm the page cache
      for (let round = 0; round < ROUNDS; round++)
        for (const c of cases) samples.get(c.name)!.push(await timed(c.args, c.code));
    } finally {
      await daemon.stop();
    }
    const rows: BenchRow[] = cases.map((c) => ({ name: c.name, samplesUs: samples.get(c.name)! }));
    printTable(`cli: exec to exit, ${ROUNDS} interleaved rounds, against a real daemon`, rows, BASELINE);
    const slowest = Math.max(...rows.filter((r) => r.name.startsWith('capgate ')).map((r) => summarize(r).p50)) / 1000;
    console.log(
      `target: client commands p50 <= ${TARGET_MS} ms; slowest here ${slowest.toFixed(0)} ms (${slowest <= TARGET_MS ? 'met' : 'NOT met'}); ${BASELINE} p50 ${(summarize(rows[0]!).p50 / 1000).toFixed(0)} ms`,
    );

    await serveStartup(dir);
  } finally {
    sleeper.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function serveStartup(dir: string): Promise<void> {
  const empty = path.join(dir, 'empty');
  const full = path.join(dir, 'ten');
  // Ten policies pushed, the first bound; the daemon restarts on this state below.
  const setup = await serveIn(full);
  try {
    await pushPolicies(setup.admin, distinctPolicies(10));
  } finally {
    await setup.stop();
  }
  const rows: BenchRow[] = [
    { name: 'capgate serve, empty state', samplesUs: [] },
    { name: 'capgate serve, 10 policies stored, 1 bound', samplesUs: [] },
  ];
  for (let round = 0; round < SERVE_ROUNDS; round++) {
    for (const [i, state] of [empty, full].entries()) {
      const d = await serveIn(state);
      rows[i]!.samplesUs.push(d.listeningMs * 1000);
      await d.stop();
    }
  }
  printTable(`serve: spawn to the request socket accepting, ${SERVE_ROUNDS} rounds`, rows, rows[0]!.name);
  const p50 = summarize(rows[1]!).p50 / 1000;
  console.log(
    `target: listening within ${SERVE_TARGET_MS} ms with policies bound; here ${p50.toFixed(0)} ms p50 (${p50 <= SERVE_TARGET_MS ? 'met' : 'NOT met'}). The sockets open while bound policies recompile in the compile process; the contract has one operation, so one of the ten is bound.`,
  );
}
