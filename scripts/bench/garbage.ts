// Bench section "garbage": what the daemon's main thread allocates per decision, and the
// collections that costs, for a lone client, a flood of allowed decisions and floods of denied
// and trapped ones (a policy that sets the limit, then denies or traps: the effect is undone).
// The daemon bench's harness (startDaemon, multiVmRun: VM client processes on raw connections)
// drives a daemon that loads gc-meter.ts, which reads V8's own accounting of the main isolate
// (v8.GCProfiler: the heap's used size before and after every collection; see there) over the
// measured round. Workers' isolates are not counted: the main thread is the one every VM shares.
// CAPGATE_BENCH_HEAP_PROFILE=<dir>: also samples where the bytes come from (the inspector's
// sampling heap profiler, collected objects included) and writes <dir>/<row>.heapprofile
// (DevTools opens it), with the top allocation sites printed; the sampling slows the daemon, so
// the readings of such a run are marked. The sampler names the function whose frame is on the
// stack: an allocation of a function V8 inlined is named with its caller. For exact sites,
// CAPGATE_BENCH_DAEMON_FLAGS=--no-turbo-inlining (node flags for the daemon, space-separated;
// the readings then are not the daemon's as it runs).
// CAPGATE_BENCH_ROWS=a,b: only the rows whose names start with these (e.g. 'lone'); separated by
// '|' instead when it holds one (the row names hold commas: '16 clients, set-memlock then deny|lone').
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../runtime/bootstrap/package-root.ts';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { hostilePolicy } from '../../test/support/hostile-policies.ts';
import { multiVmRun, POLICY, startDaemon, type SocketRun } from './daemon.ts';
import type { GcMeterCommand, GcMeterMessage, GcReading, ProfileNode, SamplingHeapProfile } from './gc-meter.ts';

const METER = path.join(PACKAGE_ROOT, 'dist/scripts/bench/gc-meter.js');
const PROFILE_DIR = process.env.CAPGATE_BENCH_HEAP_PROFILE;
const DAEMON_FLAGS = process.env.CAPGATE_BENCH_DAEMON_FLAGS?.split(' ').filter((f) => f !== '') ?? [];
const ROWS_ENV = process.env.CAPGATE_BENCH_ROWS;
const ROW_NAMES = ROWS_ENV?.split(ROWS_ENV.includes('|') ? '|' : ',');
/** One sample per this many bytes allocated (V8's default is 32 KiB; finer for a per-request path). */
const PROFILE_INTERVAL_BYTES = 4096;

interface GarbageRow {
  name: string;
  /** The policy bound for the row. */
  policy: () => Promise<Uint8Array>;
  connections: number;
  perConnection: number;
}

const ROWS: GarbageRow[] = [
  { name: 'lone client, allow', policy: memlockCap, connections: 1, perConnection: 10_000 },
  { name: '16 clients, allow', policy: memlockCap, connections: 16, perConnection: 1000 },
  {
    name: '16 clients, set-memlock then deny (undone)',
    policy: () => hostilePolicy('memlock-then-deny'),
    connections: 16,
    perConnection: 1000,
  },
  {
    name: '16 clients, set-memlock then trap (undone)',
    policy: () => hostilePolicy('memlock-then-trap'),
    connections: 16,
    perConnection: 1000,
  },
];

async function memlockCap(): Promise<Uint8Array> {
  return fs.readFileSync(POLICY);
}

/** Asks the daemon's meter and waits for its answer. */
function ask<K extends GcMeterMessage['gcMeter']>(
  daemon: ChildProcess,
  command: GcMeterCommand,
  expect: K,
): Promise<Extract<GcMeterMessage, { gcMeter: K }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: GcMeterMessage): void => {
      if (m.gcMeter === 'failed') done(() => reject(new Error(`gc meter: ${m.error}`)));
      else if (m.gcMeter === expect) done(() => resolve(m as Extract<GcMeterMessage, { gcMeter: K }>));
    };
    const onExit = (code: number | null): void => done(() => reject(new Error(`the daemon exited with ${code}`)));
    const done = (f: () => void): void => {
      daemon.off('message', onMessage);
      daemon.off('exit', onExit);
      f();
    };
    daemon.on('message', onMessage);
    daemon.once('exit', onExit);
    daemon.send(command);
  });
}

interface Measured {
  row: GarbageRow;
  run: SocketRun;
  gc: GcReading;
}

export async function run(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-bench-garbage-'));
  const daemon = await startDaemon(dir, {
    nodeFlags: [...DAEMON_FLAGS, '--import', METER],
    env: { CAPGATE_BENCH_GC_METER: '1' },
    ipc: true,
  });
  const child = daemon.child;
  const results: Measured[] = [];
  try {
    const admin = new CapgateAdminClient({ socketPath: daemon.admin, timeoutMs: 600_000 });
    for (const row of ROWS) {
      if (ROW_NAMES !== undefined && !ROW_NAMES.some((n) => row.name.startsWith(n))) continue;
      const name = `garbage-${results.length}`;
      await admin.pushPolicy(name, await row.policy());
      await admin.bind('set-memlock', { policy: name });
      let gc: GcReading | undefined;
      const r = await multiVmRun(child.pid!, daemon.admin, daemon.request, 1, row.connections, row.perConnection, {
        warmUpPerConnection: Math.max(100, Math.ceil(2000 / row.connections)),
        async before() {
          await ask(child, { gcMeter: 'start' }, 'started');
          if (PROFILE_DIR !== undefined)
            await ask(child, { gcMeter: 'profile-start', intervalBytes: PROFILE_INTERVAL_BYTES }, 'started');
        },
        async after() {
          gc = (await ask(child, { gcMeter: 'stop' }, 'reading')).reading;
          if (PROFILE_DIR !== undefined) {
            const { profile } = await ask(child, { gcMeter: 'profile-stop' }, 'profile');
            const file = path.join(PROFILE_DIR, `${row.name.replace(/[^a-z0-9]+/gi, '-')}.heapprofile`);
            fs.mkdirSync(PROFILE_DIR, { recursive: true });
            fs.writeFileSync(file, JSON.stringify(profile));
            printTopSites(row.name, profile, decisionsOf(row), file);
          }
        },
      });
      results.push({ row, run: r, gc: gc! });
    }
    admin.close();
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  printReadings(results);
}

const decisionsOf = (row: GarbageRow): number => row.connections * row.perConnection;

function printReadings(results: Measured[]): void {
  const header = [
    'case',
    'decisions',
    'KB/decision',
    'scavenges/10k',
    'mark-compacts/10k',
    'GC pause ms/10k',
    'decisions/s',
    'daemon CPU µs/decision',
    'main thread CPU µs/decision',
    'outcomes',
  ];
  const lines = results.map(({ row, run, gc }) => {
    const n = run.samples.length;
    const per10k = (v: number): string => ((v * 10_000) / n).toFixed(1);
    const outcomes = Object.entries(run.notAllowed)
      .map(([k, v]) => `${k} x${v}`)
      .join(', ');
    return [
      row.name,
      String(n),
      (gc.allocatedBytes / n / 1024).toFixed(1),
      per10k(gc.scavenges),
      per10k(gc.markCompacts),
      per10k(gc.scavengeMs + gc.markCompactMs),
      String(Math.round(n / run.seconds)),
      String(Math.round(run.daemonCpuUs)),
      String(Math.round(run.mainThreadCpuUs ?? Number.NaN)),
      outcomes === '' ? 'all allowed' : `not allowed: ${outcomes}`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  console.log(
    `\n## garbage: the daemon's main isolate, per decision (Node ${process.version}; load average ${load})${PROFILE_DIR !== undefined ? ' (heap sampling on: slower)' : ''}${DAEMON_FLAGS.length > 0 ? ` (daemon flags: ${DAEMON_FLAGS.join(' ')})` : ''}\n`,
  );
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
  console.log(
    "KB/decision: bytes the main isolate allocated over the measured round (v8.GCProfiler's used heap before/after each collection; Buffers' backing stores not counted) / decisions; collections and their main-thread pauses (GCProfiler's cost) per 10,000 decisions; daemon CPU: all its threads, /proc; main thread CPU: the daemon's main thread alone, /proc (10 ms ticks)",
  );
}

/** The functions that allocated most (self bytes, sampled), as a share of the row's allocation. */
function printTopSites(name: string, profile: SamplingHeapProfile, decisions: number, file: string): void {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode, parent: string): void => {
    const f = node.callFrame;
    const self = `${f.functionName || '(anonymous)'} ${path.basename(f.url)}:${f.lineNumber + 1}`;
    // Native builtins (JSON.stringify, Buffer.toString...) are named with their caller.
    const site = f.url === '' ? `${self} <- ${parent}` : self;
    if (node.selfSize > 0) {
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) walk(c, f.url === '' ? parent : self);
  };
  walk(profile.head, '');
  const top = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 25);
  console.log(
    `\n### where the bytes come from: ${name} (${(total / decisions / 1024).toFixed(1)} KB/decision sampled; ${file})\n`,
  );
  for (const [site, bytes] of top)
    console.log(
      `${(bytes / decisions).toFixed(0).padStart(7)} B/decision  ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${site}`,
    );
}
