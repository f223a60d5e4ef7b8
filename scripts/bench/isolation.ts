// Bench section "isolation": one VM's policy must never stall the daemon for the others. For each
// hostile class, a victim VM's decisions (one connection, one at a time) are timed alone and then
// while a hostile VM (or an admin uploading a bomb) attacks, in the same run, against a real daemon;
// beside them, the daemon's longest event-loop stall in each phase (/v1/metrics, which reports the
// interval since the previous scrape). Three configurations (CONFIGURATIONS): the default daemon
// with a victim asking in an open loop (the main measure), the same with the victim back to back
// (a second flood: the stress case), every run in a worker (engine.inlineFuel 0), and the default
// daemon on one CPU with the victim's client alone on the other (CPU affinity): the victim's own
// client then never waits for a CPU, so what it loses is the daemon's isolation alone.
// Targets: the victim's p99 under any hostile load <= 2x its p99 alone; no stall over 5 ms.
// Two baselines say what of that is the machine's: the control row (processes that only spin in
// the hostile VM's pod, asking the daemon nothing) and, before the daemon starts, the floor (the
// same victim against floor-server.ts, a server that answers at once, alone and beside the same
// spinning processes). A class's p99 loaded is also shown against the control's ("vs control"),
// measured in the class's own row: each row alternates alone, control and loaded blocks (BLOCKS of
// each, BLOCK_REQUESTS decisions a block), since on a shared machine the noise drifts within minutes,
// and a control measured at another time was as far off as the classes it was to judge. Each
// alone block starts once the daemon is quiet (no compile process, its threads idle), so that a
// slow drift, a GC or a compile left over from the previous row falls on every side, not on one. The clients run in CPU cgroups where the host lets us make them, as pods do under the
// kubelet: a pods group beside the daemon (with this driver's uploads in it), and one group per
// VM under it, so the clients' CPU use competes with the daemon as one group, and the attacker's
// with the victim's as one pod with another, not thread for thread.
// A stall is any cause; beside it, the longest turn of guest work in the main thread's CPU time
// (what the budget bounds) and in wall time, and how long the main thread waited for a CPU in the
// phase (/proc/<pid>/task/<pid>/schedstat): on a shared machine, a stall is mostly that wait.
// And where the daemon's CPU went in each phase, by thread (thread-cpu.ts): the main thread, the
// evaluation workers, V8's platform threads (which mark and sweep for every isolate, at nice 0),
// libuv's pool, the WAL checkpoint worker.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../runtime/bootstrap/package-root.ts';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { validateVmRegistration } from '../../runtime/identity/index.ts';
import {
  hostilePolicy,
  STORM_BYTES,
  UPLOAD_BOMBS,
  type HostileClass,
  type UploadBomb,
} from '../../test/support/hostile-policies.ts';
import type { IsolationClientCommand, IsolationClientMessage } from './isolation-vm-client.ts';
import { affinityOf, cpusOf, pinAll } from './cpu-affinity.ts';
import { compileProcesses } from './footprint.ts';
import { summarize } from './table.ts';
import { THREAD_GROUPS, threadCpuBetween, threadSnapshot, type ThreadGroup } from './thread-cpu.ts';

const ROOT = PACKAGE_ROOT;
const MEMLOCK_CAP = path.join(ROOT, 'guest-examples/assemblyscript/build/memlock-cap.wasm');
/** CAPGATE_BENCH_ROWS=a,b: only these rows (hostile classes and bombs, by name); all by default. */
const ROWS = process.env.CAPGATE_BENCH_ROWS?.split(',');
const selected = (name: string): boolean => ROWS === undefined || ROWS.includes(name);
/** Alone and loaded blocks per row, alternating. */
const BLOCKS = 4;
/** Decisions per block: BLOCKS x BLOCK_REQUESTS = 2,000 each side, enough for a p99 of 20 samples. */
const BLOCK_REQUESTS = 500;
const VICTIM_BYTES = String(2n * 1024n * 1024n);
/**
 * How the victim asks, one request at a time on one connection:
 * - an open loop, one request due every `everyUs` (as a VM's requests come when it needs them),
 *   each latency counted from when it was due: the main measure. Alone, the idle daemon's
 *   wake-ups (event loop, workers) set its p99;
 * - back to back: the victim then keeps the daemon's main thread nearly busy by itself, so it is
 *   a second flood, and any fair share of that thread with the hostile VM shows in its latency.
 */
type VictimPace = { everyUs: number } | 'back-to-back';
/** CAPGATE_BENCH_VICTIM_EVERY_US=N: the open loop's interval (default 2000 µs). */
const OPEN_LOOP = { everyUs: positiveEnv('CAPGATE_BENCH_VICTIM_EVERY_US') ?? 2000 };

interface Configuration {
  name: string;
  label: string;
  inlineFuel: number | undefined;
  pace: VictimPace;
  /** CPU affinity: the daemon, this driver, the hostile pod and the floor server on `shared`, the
   * victim's client alone on `victim`; undefined: every process on every CPU. */
  cpus?: Pinning;
}

interface Pinning {
  shared: number;
  victim: number;
}

const CONFIGURATIONS: Configuration[] = [
  { name: 'default', label: 'speculative runs on the main thread (default)', inlineFuel: undefined, pace: OPEN_LOOP },
  {
    name: 'back-to-back',
    label: 'speculative runs on the main thread (default), the victim back to back',
    inlineFuel: undefined,
    pace: 'back-to-back',
  },
  { name: 'workers', label: 'every run in a worker (engine.inlineFuel 0)', inlineFuel: 0, pace: OPEN_LOOP },
  {
    name: 'one-core',
    label: "the daemon (default) and the hostile pod on CPU 0, the victim's client alone on CPU 1",
    inlineFuel: undefined,
    pace: OPEN_LOOP,
    cpus: { shared: 0, victim: 1 },
  },
];
/** CAPGATE_BENCH_CONFIGS=default,back-to-back,workers: only these configurations (all by default). */
const CONFIGS = process.env.CAPGATE_BENCH_CONFIGS?.split(',');

const paceText = (pace: VictimPace): string =>
  pace === 'back-to-back' ? 'back to back' : `one due every ${pace.everyUs} µs (latency from when it was due)`;

function positiveEnv(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of microseconds, got ${v}`);
  return n;
}
const POLICY_CLASSES: HostileClass[] = [
  'log-storm',
  'grow-storm',
  'page-storm',
  'memlock-then-deny',
  'memlock-then-trap',
  'memlock-then-spin',
  'memlock-in-worker',
];
const BOMBS: UploadBomb[] = ['table-bomb', 'element-bomb', 'type-bomb', 'function-count'];

interface Phase {
  samplesUs: number[];
  /** Longest event-loop delay of the phase, in ms (whatever caused it: on a shared machine, mostly the scheduler). */
  stallMs: number;
  /** Longest turn of policy code on the main thread, in its CPU time (ms). */
  guestMs: number;
  /** The wall time that turn spanned (ms). */
  guestWallMs: number;
  /** Time the daemon's main thread was runnable and waited for a CPU, in the phase (ms). */
  runQueueMs: number;
  /** The phase's length (ms). */
  phaseMs: number;
  /** CPU time the daemon's threads used in the phase, by group (ms; thread-cpu.ts). */
  threadsMs: Record<ThreadGroup, number>;
}

interface Row {
  name: string;
  alone: Phase;
  loaded: Phase;
  /** The control's blocks, interleaved with this row's (undefined in the control row itself). */
  control?: Phase;
  /** What the attack did meanwhile, e.g. `deny:fuel-exhausted x120`. */
  attack: string;
  /** How many requests (or uploads) that was, all outcomes together. */
  attackCount?: number;
}

class Client {
  readonly #child: ChildProcess;
  targetPid = 0;

  constructor() {
    this.#child = fork(path.join(ROOT, 'dist/scripts/bench/isolation-vm-client.js'), [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
  }

  get pid(): number {
    return this.#child.pid!;
  }

  next<K extends IsolationClientMessage['kind']>(kind: K): Promise<Extract<IsolationClientMessage, { kind: K }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: IsolationClientMessage): void => {
        if (m.kind === 'failed') return done(() => reject(new Error(`bench VM client: ${m.error}`)));
        if (m.kind === kind) done(() => resolve(m as Extract<IsolationClientMessage, { kind: K }>));
      };
      const onExit = (code: number | null): void =>
        done(() => reject(new Error(`a bench VM client exited with ${code}`)));
      const done = (f: () => void): void => {
        this.#child.off('message', onMessage);
        this.#child.off('exit', onExit);
        f();
      };
      this.#child.on('message', onMessage);
      this.#child.once('exit', onExit);
    });
  }

  tell(m: IsolationClientCommand): void {
    this.#child.send(m);
  }

  async exit(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.tell({ cmd: 'exit' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
}

async function startDaemon(
  dir: string,
  inlineFuel: number | undefined,
): Promise<{ child: ChildProcess; admin: CapgateAdminClient; adminSocket: string; request: string }> {
  // Stalls sampled every millisecond here (the default, 5 ms, is cheaper and coarser).
  const config = {
    runDir: path.join(dir, 'run'),
    stateDir: path.join(dir, 'state'),
    log: { level: 'error' },
    metrics: { eventLoopResolutionMs: 1 },
    ...(inlineFuel !== undefined ? { engine: { inlineFuel } } : {}),
    // CAPGATE_BENCH_SCHEDULER='{"vmShare":1}': scheduler keys of the daemon (e.g. pacing off), to compare.
    ...(process.env.CAPGATE_BENCH_SCHEDULER
      ? { scheduler: JSON.parse(process.env.CAPGATE_BENCH_SCHEDULER) as object }
      : {}),
  };
  // CAPGATE_BENCH_DAEMON_FLAGS='--trace-gc --cpu-prof': node flags for the daemon (to look inside it),
  // and CAPGATE_BENCH_DAEMON_STDOUT=file: where its stdout goes (--trace-gc writes there).
  const flags = process.env.CAPGATE_BENCH_DAEMON_FLAGS?.split(' ').filter((f) => f !== '') ?? [];
  const stdoutFile = process.env.CAPGATE_BENCH_DAEMON_STDOUT;
  const stdout = stdoutFile ? fs.openSync(stdoutFile, 'a') : 'ignore';
  const child = spawn(
    process.execPath,
    [...flags, path.join(ROOT, 'dist/runtime/daemon/main.js'), '--json', JSON.stringify(config)],
    { cwd: ROOT, stdio: ['ignore', stdout, 'inherit'] },
  );
  if (typeof stdout === 'number') fs.closeSync(stdout);
  const admin = new CapgateAdminClient({ socketPath: path.join(dir, 'run', 'admin.sock'), timeoutMs: 600_000 });
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the daemon exited with ${child.exitCode}`);
    try {
      await admin.health();
      break;
    } catch {
      if (i > 600) throw new Error('the daemon did not come up within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    child,
    admin,
    adminSocket: path.join(dir, 'run', 'admin.sock'),
    request: path.join(dir, 'run', 'request.sock'),
  };
}

/** The main thread's run-queue wait so far (ms): schedstat's second field, in ns. */
function runQueueMs(pid: number): number {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return Number.NaN; // no schedstats in this kernel
  }
}

/** Since the previous scrape (a scrape starts a new interval): the longest event-loop delay and
 * the longest turn of policy code on the main thread, in ms (NaN: the daemon does not report it). */
async function mainThread(
  admin: CapgateAdminClient,
): Promise<{ stallMs: number; guestMs: number; guestWallMs: number }> {
  const text = await admin.metrics();
  const read = (name: string): number => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) * 1000 : NaN;
  };
  return {
    stallMs: read('capgate_event_loop_delay_max_seconds'),
    guestMs: read('capgate_main_thread_guest_max_seconds'),
    guestWallMs: read('capgate_main_thread_guest_max_wall_seconds'),
  };
}

/** The kernel's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Total CPU time of a process so far (ms): utime + stime of all its threads, /proc/<pid>/stat. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Waits until the daemon has no compile process and used under 10 ms of CPU in the last 200 ms
 * (at most 10 s; says so when it never settles). */
async function settle(daemonPid: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const before = cpuMs(daemonPid);
    await new Promise((r) => setTimeout(r, 200));
    if (compileProcesses(daemonPid).length === 0 && cpuMs(daemonPid) - before < 10) return;
  }
  console.error('isolation bench: the daemon did not settle within 10 s; measuring anyway');
}

/** A CPU cgroup for the clients, beside the daemon's (v1 `cpu` or v2 with the cpu controller), or
 * undefined when this host does not let us make one: the kubelet's pods group. This driver (the
 * admin's uploads) enters it after it started the daemon; each VM's client is then placed in a
 * group of its own under it, as each pod is, so the hostile VM's client competes with the
 * victim's as one pod with another, not thread for thread (CAPGATE_BENCH_ONE_POD=1: both in the
 * pods group itself, to compare). The driver leaves before the next daemon starts. */
class PodsCgroup {
  readonly #pods = new Set<string>();

  private constructor(readonly dir: string) {}

  static create(): PodsCgroup | undefined {
    for (const root of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
      try {
        const own = ownCgroup(root);
        if (own === undefined) continue;
        const dir = path.join(root, own, `capgate-bench-pods-${process.pid}`);
        fs.mkdirSync(dir);
        if (fs.existsSync(path.join(dir, 'cpu.shares')) || fs.existsSync(path.join(dir, 'cpu.weight')))
          return new PodsCgroup(dir);
        fs.rmdirSync(dir);
      } catch {}
    }
    return undefined;
  }

  enter(): void {
    fs.writeFileSync(path.join(this.dir, 'cgroup.procs'), String(process.pid));
  }

  /** Moves a VM's client (and the children it starts next) into that VM's pod group. */
  place(pid: number, vm: string): void {
    if (process.env.CAPGATE_BENCH_ONE_POD) return;
    const pod = path.join(this.dir, vm);
    if (!this.#pods.has(pod)) {
      fs.mkdirSync(pod);
      this.#pods.add(pod);
    }
    fs.writeFileSync(path.join(pod, 'cgroup.procs'), String(pid));
  }

  leave(): void {
    this.outside(process.pid);
  }

  /** Moves a process out of the pods group, beside the daemon (a host service). */
  outside(pid: number): void {
    fs.writeFileSync(path.join(path.dirname(this.dir), 'cgroup.procs'), String(pid));
  }

  /** Removes the groups (this driver has left them, and the clients have exited). */
  close(): void {
    for (const dir of [...this.#pods, this.dir]) {
      try {
        fs.rmdirSync(dir);
      } catch (err) {
        console.error(`isolation bench: could not remove ${dir}: ${(err as Error).message}`);
      }
    }
  }
}

/** This process's cgroup path under a mounted hierarchy (v1 by controller name, v2 by "0::"). */
function ownCgroup(root: string): string | undefined {
  if (!fs.existsSync(path.join(root, 'cgroup.procs'))) return undefined;
  const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('cpu'));
  const line = root.endsWith('/cpu') ? v1 : lines.find((l) => l.startsWith('0::'));
  return line?.split(':').slice(2).join(':');
}

/** CAPGATE_BENCH_TRACE_DIR=dir: the victim traces each request (isolation-vm-client.ts), one line
 * per block in dir/victim.jsonl (with the daemon preloading daemon-trace.ts, they can be joined). */
const TRACE_DIR = process.env.CAPGATE_BENCH_TRACE_DIR;
let tracedConfiguration = '';

/** One block of the victim's decisions, with what the daemon's main thread did meanwhile. */
async function victimBlock(
  admin: CapgateAdminClient,
  daemonPid: number,
  victim: Client,
  requestSocket: string,
  pace: VictimPace,
  label = '',
): Promise<Phase & { outcomes: Record<string, number> }> {
  await mainThread(admin);
  const wait0 = runQueueMs(daemonPid);
  const threads0 = threadSnapshot(daemonPid);
  const t0 = performance.now();
  const ran = victim.next('ran');
  victim.tell({
    cmd: 'run',
    socketPath: requestSocket,
    count: BLOCK_REQUESTS,
    bytes: VICTIM_BYTES,
    ...(pace !== 'back-to-back' ? { intervalUs: pace.everyUs } : {}),
    ...(TRACE_DIR !== undefined ? { tracePid: daemonPid } : {}),
  });
  const r = await ran;
  if (TRACE_DIR !== undefined)
    fs.appendFileSync(
      path.join(TRACE_DIR, 'victim.jsonl'),
      `${JSON.stringify({ configuration: tracedConfiguration, daemonPid, label, trace: r.trace })}\n`,
    );
  return {
    samplesUs: r.samplesUs,
    outcomes: r.outcomes,
    runQueueMs: runQueueMs(daemonPid) - wait0,
    phaseMs: performance.now() - t0,
    threadsMs: threadCpuBetween(daemonPid, threads0, threadSnapshot(daemonPid)),
    ...(await mainThread(admin)),
  };
}

/** Blocks of one side pooled: samples together, the worst stall and guest turn, waits summed. */
function pool(
  blocks: Array<Phase & { outcomes: Record<string, number> }>,
): Phase & { outcomes: Record<string, number> } {
  const outcomes: Record<string, number> = {};
  for (const b of blocks) for (const [k, n] of Object.entries(b.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + n;
  const max = (f: (b: Phase) => number): number => Math.max(...blocks.map(f));
  const sum = (f: (b: Phase) => number): number => blocks.reduce((t, b) => t + f(b), 0);
  return {
    samplesUs: blocks.flatMap((b) => b.samplesUs),
    outcomes,
    stallMs: max((b) => b.stallMs),
    guestMs: max((b) => b.guestMs),
    guestWallMs: max((b) => b.guestWallMs),
    runQueueMs: sum((b) => b.runQueueMs),
    phaseMs: sum((b) => b.phaseMs),
    threadsMs: Object.fromEntries(THREAD_GROUPS.map((g) => [g, sum((b) => b.threadsMs[g])])) as Record<
      ThreadGroup,
      number
    >,
  };
}

/** A hostile load: started before a loaded block, stopped after it; `stop` says what it did. */
interface Load {
  start(): Promise<void>;
  stop(): Promise<Record<string, number>>;
}

function add(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
}

async function measureRow(
  name: string,
  daemon: { child: ChildProcess; admin: CapgateAdminClient; request: string },
  victim: Client,
  load: Load,
  pace: VictimPace,
  control?: Load,
): Promise<Row & { victimLoaded: Record<string, number> }> {
  const pid = daemon.child.pid!;
  const alone: Array<Phase & { outcomes: Record<string, number> }> = [];
  const loaded: typeof alone = [];
  const controlled: typeof alone = [];
  const attack: Record<string, number> = {};
  const under = async (l: Load, into: typeof alone, label: string): Promise<Record<string, number>> => {
    await l.start();
    into.push(await victimBlock(daemon.admin, pid, victim, daemon.request, pace, label));
    return l.stop();
  };
  for (let b = 0; b < BLOCKS; b++) {
    await settle(pid);
    alone.push(await victimBlock(daemon.admin, pid, victim, daemon.request, pace, `${name}/alone/${b}`));
    if (control !== undefined) {
      await under(control, controlled, `${name}/control/${b}`);
      await settle(pid);
    }
    add(attack, await under(load, loaded, `${name}/loaded/${b}`));
  }
  const l = pool(loaded);
  return {
    name,
    alone: pool(alone),
    loaded: l,
    ...(control !== undefined ? { control: pool(controlled) } : {}),
    attack: attackText(attack),
    attackCount: Object.values(attack).reduce((t, n) => t + n, 0),
    victimLoaded: l.outcomes,
  };
}

const attackText = (outcomes: Record<string, number>): string =>
  Object.entries(outcomes)
    .map(([k, n]) => `${k} x${n}`)
    .join(', ');

/** The hostile VM's client storming the request socket on 2 connections. */
function storm(hostile: Client, requestSocket: string): Load {
  return {
    async start() {
      const storming = hostile.next('storming');
      hostile.tell({ cmd: 'storm', socketPath: requestSocket, connections: 2, bytes: String(STORM_BYTES) });
      await storming;
    },
    async stop() {
      const stopped = hostile.next('stopped');
      hostile.tell({ cmd: 'stop' });
      return (await stopped).outcomes;
    },
  };
}

/**
 * CAPGATE_BENCH_UPLOAD_FRESH=N: the upload rows' admin runs N loops at once, each upload on a new
 * connection (a flood that opens one per upload, past keep-alive); unset: one loop on one client.
 */
const FRESH_UPLOAD_LOOPS = positiveEnv('CAPGATE_BENCH_UPLOAD_FRESH');

/** An admin uploading the same bomb over and over. */
function uploads(admin: CapgateAdminClient, adminSocket: string, name: string, bytes: Uint8Array): Load {
  let uploading = false;
  let loops: Array<Promise<Record<string, number>>> = [];
  const push = async (): Promise<string> => {
    const client = FRESH_UPLOAD_LOOPS === undefined ? admin : new CapgateAdminClient({ socketPath: adminSocket });
    try {
      return await client.pushPolicy(name, bytes).then(
        () => 'accepted',
        (e: unknown) => `refused ${(e as { status?: number }).status ?? '?'}`,
      );
    } finally {
      if (client !== admin) client.close();
    }
  };
  return {
    async start() {
      uploading = true;
      loops = Array.from({ length: FRESH_UPLOAD_LOOPS ?? 1 }, async () => {
        const refusals: Record<string, number> = {};
        while (uploading) {
          const status = await push();
          refusals[status] = (refusals[status] ?? 0) + 1;
        }
        return refusals;
      });
    },
    async stop() {
      uploading = false;
      const refusals: Record<string, number> = {};
      for (const r of await Promise.all(loops))
        for (const [status, n] of Object.entries(r)) refusals[status] = (refusals[status] ?? 0) + n;
      return refusals;
    },
  };
}

/** HOG_PROCESSES spinning processes in the hostile VM's pod that never ask the daemon anything:
 * the control row. What the victim loses here is the machine's (the OS scheduler's, the other
 * pods' CPU), not the daemon's isolation; a class's loss beyond it is the daemon's. */
const HOG_PROCESSES = 2;
const CONTROL_ROW = 'cpu-hog (control)';

function cpuHog(pods: PodsCgroup | undefined): Load {
  let hogs: ChildProcess[] = [];
  return {
    async start() {
      hogs = Array.from({ length: HOG_PROCESSES }, () =>
        spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
      );
      await Promise.all(hogs.map((h) => new Promise((r) => h.once('spawn', r))));
      for (const h of hogs) pods?.place(h.pid!, 'hostile');
    },
    async stop() {
      await Promise.all(
        hogs.map((h) => {
          const exited = new Promise((r) => h.once('exit', r));
          h.kill('SIGKILL');
          return exited;
        }),
      );
      return { [`${HOG_PROCESSES} processes spinning`]: 1 };
    },
  };
}

async function runConfiguration(c: Configuration, pods: PodsCgroup | undefined): Promise<Row[]> {
  return withPinning(c.cpus, () => measureConfiguration(c, pods));
}

/** Runs `f` with this driver on `cpus.shared` (so the daemon and the clients it starts are there
 * too, until a client is moved), then puts the driver back where it was. */
async function withPinning<T>(cpus: Pinning | undefined, f: () => Promise<T>): Promise<T> {
  if (cpus === undefined) return f();
  const was = affinityOf(process.pid);
  pinAll(process.pid, cpus.shared);
  try {
    return await f();
  } finally {
    pinAll(process.pid, was);
  }
}

const pinningText = (cpus: Pinning): string =>
  `the server and the hostile pod on CPU ${cpus.shared}, the victim's client alone on CPU ${cpus.victim}`;

/** Whether this host has the CPUs a configuration pins to (else it is skipped, saying why). */
function hasCpus(c: Configuration): boolean {
  if (c.cpus === undefined) return true;
  const cpus = cpusOf(process.pid);
  if (cpus.includes(c.cpus.shared) && cpus.includes(c.cpus.victim)) return true;
  console.log(
    `\n## isolation (${c.name}): skipped: it needs CPUs ${c.cpus.shared} and ${c.cpus.victim}, and this process may use ${cpus.join(',')}`,
  );
  return false;
}

async function measureConfiguration(c: Configuration, pods: PodsCgroup | undefined): Promise<Row[]> {
  const { label, pace } = c;
  tracedConfiguration = c.name;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-bench-isolation-'));
  const daemon = await startDaemon(dir, c.inlineFuel);
  pods?.enter();
  const victim = new Client();
  const hostile = new Client();
  try {
    if (c.cpus !== undefined) pinAll(victim.pid, c.cpus.victim);
    pods?.place(victim.pid, 'victim');
    pods?.place(hostile.pid, 'hostile');
    victim.targetPid = (await victim.next('ready')).targetPid;
    hostile.targetPid = (await hostile.next('ready')).targetPid;
    for (const [k, c] of [victim, hostile].entries()) {
      const reg = validateVmRegistration({
        identity: {
          uuid: `6f1c1f7e-5d0b-4c8e-9a51-0c5b8f1e2c${String(k).padStart(2, '0')}`,
          name: k === 0 ? 'victim' : 'hostile',
          id: 200 + k,
          labels: [['memory-bytes', String(1n << 30n)]],
        },
        anchor: { rootPid: c.pid },
      });
      if (!reg.ok) throw new Error(reg.error);
      await daemon.admin.registerVm(reg.vm);
    }
    const rows: Row[] = [];
    const keep = (row: Row & { victimLoaded: Record<string, number> }): void => {
      rows.push(row);
      if (Object.keys(row.victimLoaded).join() !== 'allow')
        console.error(`${label} ${row.name}: the victim got ${attackText(row.victimLoaded)}`);
    };
    for (const cls of POLICY_CLASSES.filter(selected)) {
      await daemon.admin.pushPolicy(cls, await hostilePolicy(cls, { onStormOnly: true }));
      await daemon.admin.bind('set-memlock', { policy: cls });
      keep(await measureRow(cls, daemon, victim, storm(hostile, daemon.request), pace, cpuHog(pods)));
    }
    // The control row and the upload bombs: the victim runs memlock-cap meanwhile (in the bombs'
    // rows, an admin uploads the bomb over and over).
    await daemon.admin.pushPolicy('memlock-cap', fs.readFileSync(MEMLOCK_CAP));
    await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
    if (selected('cpu-hog')) keep(await measureRow(CONTROL_ROW, daemon, victim, cpuHog(pods), pace));
    for (const bomb of BOMBS.filter(selected)) {
      const load = uploads(daemon.admin, daemon.adminSocket, bomb, await UPLOAD_BOMBS[bomb]());
      keep(await measureRow(`upload ${bomb}`, daemon, victim, load, pace, cpuHog(pods)));
    }
    return rows;
  } finally {
    await Promise.all([victim.exit(), hostile.exit()]);
    pods?.leave();
    daemon.admin.close();
    daemon.child.kill('SIGTERM');
    await new Promise((r) => daemon.child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function printRows(title: string, rows: Row[]): void {
  const ms = (us: number): string => (us / 1000).toFixed(2);
  const header = [
    'hostile class',
    'p50 alone',
    'p50 loaded',
    'p99 alone',
    'p99 loaded',
    'p99 ratio',
    'p99 control',
    'vs control',
    'max alone',
    'max loaded',
    'stall alone',
    'stall loaded',
    'guest CPU',
    'guest wall',
    'CPU wait loaded',
    'targets',
    'attack meanwhile',
  ];
  const lines = rows.map((r) => {
    const a = summarize({ name: r.name, samplesUs: r.alone.samplesUs });
    const l = summarize({ name: r.name, samplesUs: r.loaded.samplesUs });
    const c = r.control && summarize({ name: r.name, samplesUs: r.control.samplesUs });
    const ratio = l.p99 / a.p99;
    const guest = Math.max(r.alone.guestMs, r.loaded.guestMs);
    const guestWall = Math.max(r.alone.guestWallMs, r.loaded.guestWallMs);
    const wait = `${r.loaded.runQueueMs.toFixed(0)} (${((100 * r.loaded.runQueueMs) / r.loaded.phaseMs).toFixed(0)}%)`;
    const targets = `${ratio <= 2 ? 'p99 ok' : 'p99 MISSED'}, ${r.loaded.stallMs <= 5 ? 'stall ok' : 'stall MISSED'}, ${Number.isNaN(guest) ? 'guest ?' : guest <= 5 ? 'guest ok' : 'guest MISSED'}`;
    const n = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(2));
    return [
      r.name,
      ms(a.p50),
      ms(l.p50),
      ms(a.p99),
      ms(l.p99),
      `${ratio.toFixed(2)}x`,
      c === undefined ? '-' : ms(c.p99),
      c === undefined ? '-' : `${(l.p99 / c.p99).toFixed(2)}x`,
      ms(Math.max(...r.alone.samplesUs)),
      ms(Math.max(...r.loaded.samplesUs)),
      n(r.alone.stallMs),
      n(r.loaded.stallMs),
      n(guest),
      n(guestWall),
      wait,
      targets,
      r.attack,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n## ${title}\n`);
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
  printThreads(rows);
}

/** Where the daemon's CPU went, alone and loaded: each group's CPU time in % of one core. */
function printThreads(rows: Row[]): void {
  const header = [
    'hostile class',
    ...THREAD_GROUPS.map((g) => `${g} alone/loaded`),
    'total alone/loaded',
    'main µs/attack request',
  ];
  const pct = (p: Phase, ms: number): string => ((100 * ms) / p.phaseMs).toFixed(0);
  // The main thread's CPU the attack added (loaded less alone: the victim's own requests are the
  // same in both), per request (or upload) it made.
  const perAttack = (r: Row): string =>
    r.attackCount === undefined || r.attackCount === 0
      ? '-'
      : (((r.loaded.threadsMs.main - r.alone.threadsMs.main) * 1000) / r.attackCount).toFixed(0);
  const lines = rows.map((r) => {
    const total = (p: Phase): number => THREAD_GROUPS.reduce((t, g) => t + p.threadsMs[g], 0);
    return [
      r.name,
      ...THREAD_GROUPS.map((g) => `${pct(r.alone, r.alone.threadsMs[g])}/${pct(r.loaded, r.loaded.threadsMs[g])}`),
      `${pct(r.alone, total(r.alone))}/${pct(r.loaded, total(r.loaded))}`,
      perAttack(r),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log("\nthe daemon's CPU by thread, % of one core over each phase (/proc/<pid>/task/*/stat, 10 ms ticks):\n");
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
}

/**
 * The machine's floor: the same victim (open loop) against floor-server.ts, alone and while the
 * control row's processes spin in the hostile pod, in alternating blocks. The p99 ratio there is
 * what the machine costs a request when a neighbour only computes; a daemon's row can be judged
 * against it, measured in the same run.
 */
async function measureFloor(
  pods: PodsCgroup | undefined,
  cpus: Pinning | undefined,
): Promise<{ alone: number[]; loaded: number[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-bench-floor-'));
  const socketPath = path.join(dir, 'floor.sock');
  const server = fork(path.join(ROOT, 'dist/scripts/bench/floor-server.js'), [socketPath], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  pods?.enter();
  const victim = new Client();
  try {
    if (cpus !== undefined) pinAll(victim.pid, cpus.victim);
    pods?.outside(server.pid!);
    pods?.place(victim.pid, 'victim');
    await Promise.all([victim.next('ready'), new Promise((r) => server.once('message', r))]);
    const hog = cpuHog(pods);
    const alone: number[] = [];
    const loaded: number[] = [];
    const block = async (into: number[]): Promise<void> => {
      const ran = victim.next('ran');
      victim.tell({
        cmd: 'run',
        socketPath,
        count: BLOCK_REQUESTS,
        bytes: VICTIM_BYTES,
        intervalUs: OPEN_LOOP.everyUs,
      });
      const r = await ran;
      if (Object.keys(r.outcomes).join() !== 'allow')
        throw new Error(`the floor server answered ${attackText(r.outcomes)}`);
      into.push(...r.samplesUs);
    };
    for (let b = 0; b < BLOCKS; b++) {
      await block(alone);
      await hog.start();
      await block(loaded);
      await hog.stop();
    }
    return { alone, loaded };
  } finally {
    await victim.exit();
    pods?.leave();
    server.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function printFloor(floor: { alone: number[]; loaded: number[] }, cpus: Pinning | undefined): void {
  const ms = (us: number): string => (us / 1000).toFixed(2);
  const a = summarize({ name: 'floor', samplesUs: floor.alone });
  const l = summarize({ name: 'floor', samplesUs: floor.loaded });
  console.log(
    `\n## the machine's floor${cpus === undefined ? '' : ` (${pinningText(cpus)})`}: the victim (${paceText(OPEN_LOOP)}) against a server that answers allow at once (floor-server.ts), alone and while ${HOG_PROCESSES} processes spin in the hostile pod\n`,
  );
  console.log('p50 alone  p50 loaded  p99 alone  p99 loaded  p99 ratio  max alone  max loaded');
  console.log(
    [
      ms(a.p50),
      ms(l.p50),
      ms(a.p99),
      ms(l.p99),
      `${(l.p99 / a.p99).toFixed(2)}x`,
      ms(Math.max(...floor.alone)),
      ms(Math.max(...floor.loaded)),
    ]
      .map((c, i) => c.padStart([9, 10, 9, 10, 9, 9, 10][i]!))
      .join('  '),
  );
}

export async function run(): Promise<void> {
  const pods = process.env.CAPGATE_BENCH_NO_CGROUP ? undefined : PodsCgroup.create();
  try {
    const configurations = CONFIGURATIONS.filter((c) => CONFIGS === undefined || CONFIGS.includes(c.name)).filter(
      hasCpus,
    );
    // One floor for each way the configurations place the processes.
    const pinnings = [...new Map(configurations.map((c) => [JSON.stringify(c.cpus ?? null), c.cpus])).values()];
    if (selected('floor'))
      for (const cpus of pinnings) printFloor(await withPinning(cpus, () => measureFloor(pods, cpus)), cpus);
    for (const c of configurations) {
      const rows = await runConfiguration(c, pods);
      printRows(
        `isolation (${c.name}): a victim VM's decisions (ms) alone and under each hostile load; ${c.label}; victim ${paceText(c.pace)}`,
        rows,
      );
    }
  } finally {
    pods?.close();
  }
  console.log(
    `\nvictim: ${BLOCKS} x ${BLOCK_REQUESTS} decisions each side, alone and loaded blocks alternating, one connection, one at a time, as each table says; hostile VM: 2 connections back to back`,
  );
  console.log(
    pods
      ? `clients: this driver in a CPU cgroup of its own (${pods.dir}), the daemon outside it, ${process.env.CAPGATE_BENCH_ONE_POD ? "the VMs' clients with the driver in that group (CAPGATE_BENCH_ONE_POD)" : "each VM's client in a group of its own under it"}, as pods and a host service are deployed`
      : 'clients: in the same CPU cgroup as the daemon (no cgroup could be made here, or CAPGATE_BENCH_NO_CGROUP is set), so they compete with it thread for thread',
  );
  console.log(
    "stall: the daemon's longest event-loop delay in the phase (ms, 1 ms sampling; any cause, the OS scheduler included); guest CPU: the longest turn of policy code on the main thread, over both phases, in the thread's CPU time (ms; what the budget bounds); guest wall: the wall time that turn spanned (CPU + time the OS ran other threads); CPU wait loaded: how long the main thread was runnable but waiting for a CPU in the loaded phase (ms, % of the phase; /proc schedstat)",
  );
  console.log(
    "targets: p99 loaded <= 2x p99 alone; no stall over 5 ms, no guest turn over 5 ms (2 cores, shared: load from other processes shows up here). p99 control: the victim's p99 in the row's control blocks (interleaved with its alone and loaded blocks: the same stretch of the machine's time), while the control row's processes spin in the hostile pod and ask nothing; vs control: p99 loaded against it, what the class costs the victim beyond the machine's own contention",
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
