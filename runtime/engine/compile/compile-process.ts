// The daemon's side of the compile process: uploads and start-up recompiles run there, never in
// the daemon's process, one at a time, each within a time limit and with the process's heap
// capped. A job past its time is stopped by killing the process; one that exhausts the heap
// kills only that process. Either way the upload gets a clear refusal and the next job gets a
// fresh process. The time limit counts the process's CPU time (every thread of it), not wall
// time: the process runs at SCHED_IDLE, and on a host whose cores are kept busy (the daemon's own
// threads, pods) a compile can wait for a core far longer than it computes; a wall-clock cap of
// 4x the limit, counted from the request (the start-up too), still ends a process that never gets
// one (../cpu-limit.ts).
//
// The daemon's main thread never forks one. A fork copies the forking process's page tables
// under its mmap_lock, and libuv then waits for the child's exec: 3-9 ms of the main thread per
// start at ~100 MB (load ~3), 12-50 ms measured on a busier machine, and a worker thread's fork
// would take the same lock. So a small compile launcher (launcher-main.ts) is started once,
// before the sockets listen (`start()`, while the daemon's process is small), and starts the
// compile processes on this side's word, relaying jobs and results. Only a launcher that died is
// started again from here: at once the first time, then after a back-off that doubles to 30 s
// (a compile asked for meanwhile is refused, to be tried again); the compile it was running is
// refused, to be tried again. "Tried again" is its own answer (CompilerUnavailable, with the
// seconds until the launcher is back), never the policy's refusal: the daemon answers it 503
// with Retry-After, and stores nothing. So is, once, a compile whose process died other than from
// its heap limit or its CPU time limit (those are the policy's doing; one that hit the wall-clock
// cap is the host's: #overTime): a signal, an abort, the
// launcher killing it for what it sent. A second such death while compiling the same bytes
// (their sha256, in a small bounded memory: compile-deaths.ts) refuses them as the policy's
// doing: bytes that kill the compile process every time would otherwise be "try again" for
// ever, an admin's retries and the policy directory's re-reads each starting a compile process
// for them. Only a death that the bytes may have caused counts: the process had been handed
// them (not one that died starting), it had compiled nothing else (jobs run one at a time, so
// no other job runs beside them, but a process serves a sequence of jobs, and one that ran an
// earlier job could carry a fault from it; the retry always gets a fresh process, so bytes that
// kill every process they reach are counted from then on), and its launcher lived (a launcher
// that dies is not the bytes' doing: 503 however often). What else can kill a process in the
// middle of a job (the OOM killer, an operator) is rare enough twice in a row for the same
// bytes, and is not a ban: asked again, the bytes are compiled again, and a success clears
// their count.
//
// The compile process ends once it has had nothing to compile for `idleMs` (1 s): the pipeline
// (binaryen, jco's wasm-tools) costs ~100 MB while loaded, and a worker thread would not give it
// back when it ends (most of it stayed in the daemon's allocator arenas: +90 MB measured). The
// second of grace lets a sequence of compiles (the policy directory's, a script's pushes) share
// one process: starting one and loading the pipeline costs ~8x a warm compile. Only its
// compiled output crosses back: the instrumented core module's bytes, verified to be metered in
// a worker thread (accept-compiled-core.ts: the process may be running an attacker's code, and
// an unmetered loop would hold the main thread for ever; a process whose module fails is ended),
// then compiled again and instantiated on trial in that worker (the trial's time is the daemon's
// own measure), whose Module is the one the evaluation workers share.
//
// The process is sandboxed (compile-sandbox.ts: no capability on any thread, no_new_privs, a
// seccomp filter, low rlimits, no inherited descriptor, a Landlock domain with no file in it).
// It says so when ready, and this side checks every thread of it in /proc (and that it is the
// launcher's child) before it sends the first byte; one that could not is ended, and the
// compile refused, naming what is missing, unless `allowUnsandboxed`. The launcher is checked
// the same way (no capability, no_new_privs, its filter, its Landlock domain) when it starts.
// Landlock is checked on the process's word (landlockShortfall says why that holds); where the
// kernel has none, compiles go on without it and the daemon warns at start.
import type { ChildProcess } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { CompileResult, CompilerUnavailable } from '../api.ts';
import type { EngineLimits } from '../limits.ts';
import type { CompileResultOnWire, LandlockReport, SandboxReport } from './compile-protocol.ts';
import type { FromLauncher, ToLauncher } from './launcher-protocol.ts';
import { jobFrame, type JobHead } from './job-frames.ts';
import { startNodeProcess } from '../../bootstrap/node-process.ts';
import { acceptCompiledCore } from './accept-compiled-core.ts';
import { CompileDeaths } from './compile-deaths.ts';
import { KNOWN_LANDLOCK_ABI, landlockSupport, type LandlockSupport } from '../../os/landlock.ts';
import { readProcStat } from '../../os/proc-stat.ts';
import { processCpuClock } from '../../os/thread-cpu-clock.ts';
import { CpuLimit } from '../cpu-limit.ts';
import { holdsCapabilities, processThreadCredentials, unconfinedThread } from '../../os/thread-credentials.ts';

const LAUNCHER = new URL('./launcher-launch.ts', import.meta.url);

export interface CompileProcessOptions {
  /** CPU time one compile may take: the compile process's (all its threads), from the moment a
   * ready process is sent the job. */
  cpuLimitMs: number;
  /** The wall-clock cap of one compile, as a multiple of `cpuLimitMs`. */
  wallCapFactor: number;
  /** The process's JS heap (old generation), in MiB. */
  maxHeapMb: number;
  /** A process with nothing to compile for this long is ended; the next job starts a new one. */
  idleMs: number;
  /**
   * Compile in a process that could not sandbox itself (no seccomp, an unknown architecture)
   * instead of refusing: it then runs as the daemon's user with its capabilities.
   */
  allowUnsandboxed: boolean;
  /**
   * The wait before a launcher that died young (under a minute) a second time in a row is started
   * again; it doubles with each further one, to 30 s at most.
   */
  launcherBackoffMs: number;
}

export const DEFAULT_COMPILE_PROCESS: Readonly<CompileProcessOptions> = Object.freeze({
  cpuLimitMs: 30_000,
  wallCapFactor: 4,
  maxHeapMb: 512,
  idleMs: 1000,
  allowUnsandboxed: false,
  launcherBackoffMs: 100,
});

/** The end of the launcher's stderr kept to say why it died. */
const STDERR_TAIL_CHARS = 2000;
/** The launcher's heap: it holds a job's bytes and a result at a time, and little else. */
const LAUNCHER_HEAP_MB = 64;
/** A compile process told to stop whose exit the launcher has not reported by then: the launcher is killed. */
const STOP_GRACE_MS = 5000;
/** A launcher that lived this long before it died is restarted at once; a shorter one backs off. */
const LAUNCHER_STEADY_MS = 60_000;
const BACKOFF_MAX_MS = 30_000;
/** Compile processes the same bytes may kill before they are refused (the first is "try again"). */
const DEATHS_REFUSED = 2;

interface Launcher {
  child: ChildProcess;
  startedAt: number;
  /** Resolves once it is up and confined; rejects (the refusal) otherwise. */
  ready: Promise<void>;
  exited: Promise<void>;
  dead: boolean;
  stderrTail: string;
}

interface Running {
  proc: number;
  launcher: Launcher;
  pid: number | undefined;
  /** Resolves once the process loaded the pipeline and is checked; rejects if it died first or is not sandboxed. */
  ready: Promise<void>;
  exited: Promise<void>;
  dead: boolean;
  /** Jobs handed to it so far. */
  jobs: number;
  /** How it ended, as the launcher told it (` (SIGKILL): why`). */
  end: string;
  /** It went with its launcher (`end` then says how the launcher ended). */
  lostWithLauncher: boolean;
  output: string;
  /** The answers to its jobs, by id. */
  results: Map<number, (r: CompileResultOnWire) => void>;
  onReady: (sandbox: SandboxReport) => void;
  onExit: (how: string, output: string) => void;
}

let kernelLandlock: LandlockSupport | undefined;

/** The kernel's Landlock as this process finds it (asked once). */
function landlockOfKernel(): LandlockSupport {
  try {
    kernelLandlock ??= landlockSupport();
  } catch (err) {
    kernelLandlock = { ok: false, errno: 0, why: err instanceof Error ? err.message : String(err) };
  }
  return kernelLandlock;
}

/**
 * What `report`'s Landlock domain lacks of what the kernel offers; undefined: nothing (or the
 * kernel offers none, which the daemon warns of at start). `allThreads`: every thread must be in
 * it, as after an exec; otherwise that holds only where the kernel can do it (TSYNC, ABI 8).
 * Landlock's state is not in /proc: this is the process's word, given before it read an
 * untrusted byte (the launcher before any compile process ran, a compile process before its
 * first job), about a domain it cannot leave afterwards.
 */
export function landlockShortfall(report: LandlockReport | undefined, allThreads: boolean): string | undefined {
  const kernel = landlockOfKernel();
  if (!kernel.ok) return undefined;
  const abi = Math.min(kernel.abi, KNOWN_LANDLOCK_ABI);
  if (report === undefined || 'why' in report)
    return `it entered no Landlock domain where the kernel has Landlock ABI ${kernel.abi}${report !== undefined ? ` (${report.why})` : ''}`;
  if (report.abi !== abi)
    return `its Landlock domain handles the rights of ABI ${report.abi}, where the kernel's ABI ${kernel.abi} knows those of ${abi}`;
  if (report.threads !== 'all' && (allThreads || abi >= 8))
    return 'its Landlock domain leaves out threads of the process';
  return undefined;
}

function refused(message: string): CompileResult {
  return { ok: false, kind: 'invalid-module', message };
}

/** A compile that could not start for a cause that passes (a launcher or process that died): to be tried again. */
class CompilerDown extends Error {}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Milliseconds as seconds, to the millisecond: `30 s`, `0.2 s`. */
const seconds = (ms: number): string => `${Math.round(ms) / 1000} s`;

/** Whether `p` settles within `ms` (a rejection is passed on); the timer ends with it either way. */
async function settledWithin(p: Promise<void>, ms: number): Promise<boolean> {
  p.catch(() => undefined); // a rejection after the timer is nobody's: not an unhandled one
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

export class CompileProcess {
  readonly #options: CompileProcessOptions;
  #launcher: Launcher | undefined;
  /** Launchers that died young in a row, and when the next may start. */
  #deaths = 0;
  #restartAt = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  /** Bytes that killed compile processes (by sha256). */
  readonly #compileDeaths = new CompileDeaths();
  #running: Running | undefined;
  /** Compile processes asked for and not yet reported gone, by `proc`. */
  readonly #procs = new Map<number, Running>();
  #nextProc = 1;
  /** Jobs run one after another. */
  #tail: Promise<unknown> = Promise.resolve();
  /** Jobs asked for and not yet answered (the running one included). */
  #pending = 0;
  #nextId = 1;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Processes told to end that have not exited yet. */
  readonly #exiting = new Set<Running>();
  #closed = false;
  /** Processes stopped for running past their time or out of memory (tests, metrics). */
  stopped = 0;
  /** Compile processes started so far (tests, benchmarks). */
  started = 0;
  /** Launchers started so far (tests). */
  launchersStarted = 0;
  /** What the last process to start said of its sandbox (tests, benchmarks). */
  lastSandbox: SandboxReport | undefined;
  /** Results refused because the process returned what an honest one would not (tests, metrics). */
  refusedOutputs = 0;

  constructor(options: Partial<CompileProcessOptions> = {}) {
    this.#options = { ...DEFAULT_COMPILE_PROCESS, ...options };
  }

  /** The pid of the compile process while one runs (tests, benchmarks). */
  get pid(): number | undefined {
    return this.#running?.dead === false ? this.#running.pid : undefined;
  }

  /** The pid of the launcher while it runs (tests). */
  get launcherPid(): number | undefined {
    return this.#launcher?.dead === false ? this.#launcher.child.pid : undefined;
  }

  /**
   * Starts the launcher now rather than at the first compile: the daemon calls it as it starts,
   * while its process is small (the fork's cost grows with it). Resolves once it is up, or not.
   */
  async start(): Promise<void> {
    if (this.#closed) return;
    await this.#launcherReady().catch(() => undefined);
  }

  /**
   * `cpuLimitMs`: this job's CPU time limit, instead of the process's (its wall-clock cap follows).
   * `bytes` is written to the launcher from where it is, not copied: it must not change until the
   * answer.
   */
  compile(bytes: Uint8Array, limits: EngineLimits, cpuLimitMs = this.#options.cpuLimitMs): Promise<CompileResult> {
    this.#pending++;
    clearTimeout(this.#idleTimer);
    const run = this.#tail.then(() => this.#run(bytes, limits, cpuLimitMs)).finally(() => this.#settled());
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves once no compile process is left: every job answered and the process exited. */
  async idle(): Promise<void> {
    for (;;) {
      // While jobs are pending, the tail is the newest one's and settles after it.
      if (this.#pending > 0) {
        await this.#tail;
        continue;
      }
      const left = [...this.#exiting, ...(this.#running !== undefined ? [this.#running] : [])];
      if (left.length === 0) return;
      await Promise.race(left.map((r) => r.exited));
    }
  }

  /** Ends the compile process and the launcher; resolves once both have exited. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#restartTimer);
    await this.#retire();
    const l = this.#launcher;
    if (l !== undefined && !l.dead) {
      // Held until it has exited (see #end). Its own child: the pid is its until reaped here.
      l.child.ref();
      l.child.kill('SIGKILL');
      await l.exited;
    }
  }

  #launcherReady(): Promise<Launcher> {
    const l = this.#launcher;
    if (l !== undefined && !l.dead) return l.ready.then(() => l);
    const wait = this.#restartAt - Date.now();
    if (wait > 0)
      return Promise.reject(
        new CompilerDown(
          `the compile launcher died ${this.#deaths} times in a row and is started again in ${Math.ceil(wait / 1000)} s; try again then${l !== undefined ? this.#launcherWhy(l) : ''}`,
        ),
      );
    const started = this.#startLauncher();
    return started.ready.then(() => started);
  }

  #startLauncher(): Launcher {
    this.launchersStarted++;
    clearTimeout(this.#restartTimer);
    const child = startNodeProcess(LAUNCHER, [`--max-old-space-size=${LAUNCHER_HEAP_MB}`, '--max-semi-space-size=1'], {
      // Pipes, not /dev/null: the daemon opens nothing outside its directories for it.
      stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, CAPGATE_DAEMON_PID: String(process.pid) },
    });
    // Its stdin carries the jobs (job-frames.ts). A launcher that died makes writes fail (EPIPE):
    // its exit says so, and the job is answered from there.
    child.stdin?.on('error', () => undefined);
    child.stdout?.resume();
    const l: Launcher = {
      child,
      startedAt: Date.now(),
      ready: Promise.resolve(),
      exited: Promise.resolve(),
      dead: false,
      stderrTail: '',
    };
    this.#launcher = l;
    const stderr = child.stderr as (Readable & { unref?: () => void }) | null;
    stderr?.setEncoding('utf8');
    stderr?.on('data', (s: string) => (l.stderrTail = (l.stderrTail + s).slice(-STDERR_TAIL_CHARS)));
    l.exited = new Promise<void>((resolve) => child.once('exit', () => (this.#launcherDied(l), resolve())));
    l.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: FromLauncher): void => {
        if (m.type !== 'launcher-ready') return;
        child.off('message', onMessage);
        const unconfined = this.#unconfinedLauncher(child.pid, m.problem, m.landlock);
        if (unconfined === undefined || this.#options.allowUnsandboxed) return resolve();
        reject(
          new Error(
            `the compile launcher could not confine itself: ${unconfined}. Policies are not compiled unsandboxed, as root; fix what is missing, or set engine.allowUnsandboxedCompile to compile without the sandbox`,
          ),
        );
      };
      child.on('message', onMessage);
      // `on`: a later one (a message that could not be sent) must not go unhandled, which would throw.
      child.on('error', (err) => {
        l.stderrTail = `${l.stderrTail}${err.message}\n`.slice(-STDERR_TAIL_CHARS);
        reject(new CompilerDown(`the compile launcher could not start: ${err.message}`));
      });
      void l.exited.then(() =>
        reject(new CompilerDown(`the compile launcher exited during start-up${this.#launcherWhy(l)}`)),
      );
    });
    l.ready.catch(() => undefined);
    child.on('message', (m: FromLauncher) => this.#fromLauncher(l, m));
    // Neither the launcher nor its pipes keep the caller's event loop alive (as a worker would not).
    child.unref();
    child.channel?.unref();
    for (const pipe of [child.stdin, child.stdout, stderr] as Array<
      ((Readable | Writable) & { unref?: () => void }) | null
    >)
      pipe?.unref?.();
    return l;
  }

  #launcherDied(l: Launcher): void {
    l.dead = true;
    const how = `the compile launcher died${this.#launcherWhy(l)}`;
    for (const r of [...this.#procs.values()])
      if (r.launcher === l) {
        r.lostWithLauncher = true;
        r.onExit(how, '');
      }
    if (this.#launcher !== l || this.#closed) return;
    this.#deaths = Date.now() - l.startedAt < LAUNCHER_STEADY_MS ? this.#deaths + 1 : 1;
    const first = this.#options.launcherBackoffMs;
    const delay = this.#deaths <= 1 ? 0 : Math.min(first * 2 ** (this.#deaths - 2), Math.max(first, BACKOFF_MAX_MS));
    this.#restartAt = Date.now() + delay;
    // Started again now, not at the next upload: that one then finds it ready.
    this.#restartTimer = setTimeout(() => {
      if (!this.#closed && this.#launcher === l) this.#startLauncher();
    }, delay);
    this.#restartTimer.unref();
  }

  #launcherWhy(l: Launcher): string {
    const code = l.child.exitCode;
    const signal = l.child.signalCode;
    const how = signal !== null ? ` (${signal})` : code !== null ? ` (exit code ${code})` : '';
    const said = l.stderrTail.trim().split('\n').slice(-3).join(' ').slice(0, 500);
    return `${how}${said ? `: ${said}` : ''}`;
  }

  /** What the launcher lacks of its confinement, from its word and from /proc; undefined: nothing. */
  #unconfinedLauncher(
    pid: number | undefined,
    problem: string | undefined,
    landlock: LandlockReport | undefined,
  ): string | undefined {
    if (problem !== undefined) return problem;
    if (pid === undefined) return 'it has no pid';
    const domain = landlockShortfall(landlock, true);
    if (domain !== undefined) return domain;
    try {
      const threads = processThreadCredentials(pid);
      const holding = threads.find(holdsCapabilities);
      if (holding !== undefined) return `its thread ${holding.tid} holds capabilities`;
      // Its compile processes inherit the main thread's no_new_privs (the thread that forks them).
      if (threads.find((t) => t.tid === pid)?.noNewPrivs !== true) return 'it lacks no_new_privs';
      const open = threads.find((t) => t.seccomp !== 2);
      if (open !== undefined) return `its thread ${open.tid} has no seccomp filter`;
    } catch (err) {
      return `its threads could not be checked in /proc: ${errorText(err)}`;
    }
    return undefined;
  }

  #fromLauncher(l: Launcher, m: FromLauncher): void {
    if (m.type === 'launcher-ready') return;
    const r = this.#procs.get(m.proc);
    if (r === undefined || r.launcher !== l) return;
    if (m.type === 'started') r.pid = m.pid;
    else if (m.type === 'ready') r.onReady(m.sandbox);
    else if (m.type === 'result') r.results.get(m.id)?.(m.result);
    else if (m.type === 'exited') {
      const how = m.signal !== null ? ` (${m.signal})` : m.code !== null ? ` (exit code ${m.code})` : '';
      r.onExit(`${how}${m.why !== undefined ? `: ${m.why}` : ''}`, m.output);
    }
  }

  #tell(l: Launcher, m: ToLauncher): void {
    if (!l.dead && l.child.connected) l.child.send(m);
  }

  /** A job on the launcher's stdin: its head, then the bytes from where they are (job-frames.ts). */
  #tellJob(l: Launcher, head: Omit<JobHead, 'length'>, bytes: Uint8Array): void {
    const stdin = l.child.stdin;
    if (l.dead || stdin === null || stdin.destroyed) return;
    for (const part of jobFrame(head, bytes)) stdin.write(part);
  }

  #spawn(l: Launcher): Running {
    this.started++;
    const proc = this.#nextProc++;
    let onReady: (sandbox: SandboxReport) => void = () => undefined;
    let onExit: (how: string, output: string) => void = () => undefined;
    const r: Running = {
      proc,
      launcher: l,
      pid: undefined,
      ready: Promise.resolve(),
      exited: Promise.resolve(),
      dead: false,
      jobs: 0,
      end: '',
      lostWithLauncher: false,
      output: '',
      results: new Map(),
      onReady: (s) => onReady(s),
      onExit: (how, output) => onExit(how, output),
    };
    this.#procs.set(proc, r);
    r.exited = new Promise<void>((resolve) => {
      onExit = (how, output) => {
        if (r.dead) return;
        r.dead = true;
        r.end = how;
        r.output = output;
        this.#procs.delete(proc);
        this.#exiting.delete(r);
        if (this.#running === r) this.#running = undefined;
        resolve();
      };
    });
    r.ready = new Promise<void>((resolve, reject) => {
      onReady = (sandbox) => {
        const unsandboxed = this.#unsandboxed(sandbox, r.pid, l.child.pid);
        if (unsandboxed === undefined || this.#options.allowUnsandboxed) return resolve();
        this.#end(r);
        reject(
          new Error(
            `the compile process could not sandbox itself: ${unsandboxed}. Policies are not compiled unsandboxed, as root; fix what is missing, or set engine.allowUnsandboxedCompile to compile without the sandbox`,
          ),
        );
      };
      void r.exited.then(() =>
        reject(
          new CompilerDown(
            r.lostWithLauncher
              ? `${r.end} while the compile process started; it is started again: try again`
              : `the compile process exited during start-up${this.#why(r)}`,
          ),
        ),
      );
    });
    r.ready.catch(() => undefined);
    this.#tell(l, { type: 'start', proc, maxHeapMb: this.#options.maxHeapMb });
    return r;
  }

  /** What the process lacks of its sandbox, from its word and from /proc; undefined: nothing. */
  #unsandboxed(report: SandboxReport, pid: number | undefined, launcherPid: number | undefined): string | undefined {
    this.lastSandbox = report;
    if (!report.applied) return report.missing;
    if (pid === undefined) return 'it has no pid';
    // Its word is not enough: every thread, as the kernel reports it, of the launcher's child.
    try {
      const parent = readProcStat(pid)?.ppid;
      if (parent !== launcherPid) return `process ${pid} is not the launcher's child (its parent is ${parent})`;
      return unconfinedThread(pid) ?? landlockShortfall(report.landlock, false);
    } catch (err) {
      return `its threads could not be checked in /proc: ${errorText(err)}`;
    }
  }

  #why(r: Running): string {
    const said = r.output.trim().split('\n').slice(-3).join(' ').slice(0, 500);
    return `${r.end}${said ? `: ${said}` : ''}`;
  }

  async #run(bytes: Uint8Array, limits: EngineLimits, cpuLimitMs: number): Promise<CompileResult> {
    if (this.#closed) return refused('the engine is closed');
    // The wall-clock cap counts from here: a process's start-up (the pipeline loaded at the
    // lowest CPU priority) gets no core on a busy host either, and is under no CPU time limit.
    const wallCapMs = cpuLimitMs * this.#options.wallCapFactor;
    const askedAt = performance.now();
    let started: Running | undefined;
    const start = async (): Promise<void> => {
      const l = await this.#launcherReady();
      if (this.#running?.launcher !== l) this.#running = undefined;
      started = this.#running ??= this.#spawn(l);
      await started.ready;
    };
    let r: Running;
    try {
      if (!(await settledWithin(start(), wallCapMs)) || started === undefined) {
        this.stopped++;
        if (started !== undefined) this.#end(started);
        return this.#unavailable(
          `the compile process did not start within the compile's wall-clock cap of ${seconds(wallCapMs)} (${this.#options.wallCapFactor}x its CPU time limit of ${seconds(cpuLimitMs)}): the host is too busy; it was stopped, try again`,
        );
      }
      r = started;
    } catch (err) {
      const message = `the policy could not be compiled: ${errorText(err)}`;
      return err instanceof CompilerDown ? this.#unavailable(message) : refused(message);
    }
    const id = this.#nextId++;
    let finished = false;
    const answer = await new Promise<CompileResultOnWire | CompileResult>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (res: CompileResultOnWire | CompileResult): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        r.results.delete(id);
        resolve(res);
      };
      r.results.set(id, done);
      // Only the process's first job: see the header.
      const firstJob = ++r.jobs === 1;
      void r.exited.then(async () => {
        if (finished) return;
        clearTimeout(timer);
        const oom = /heap limit|out of memory/i.test(r.output);
        this.stopped += oom ? 1 : 0;
        if (oom)
          return done(
            refused(
              `compiling the policy exhausted the compile process's memory limit of ${this.#options.maxHeapMb} MiB; it was stopped${this.#why(r)}`,
            ),
          );
        if (r.lostWithLauncher)
          return done(this.#unavailable(`${r.end} while compiling the policy; it is started again: try again`));
        if (!firstJob)
          return done(
            this.#unavailable(
              `the compile process died while compiling the policy${this.#why(r)}; a new one is started: try again`,
            ),
          );
        done(await this.#killedBy(bytes, this.#why(r)));
      });
      this.#tellJob(r.launcher, { proc: r.proc, id, limits }, bytes);
      // Its CPU time from now on (the process is idle until it reads the job). A clock that cannot
      // be read (no pid: no such process to read) counts the wall clock, as the limit used to.
      const limit = new CpuLimit(r.pid !== undefined ? processCpuClock(r.pid) : null, cpuLimitMs, {
        wallCapMs: Math.max(1, wallCapMs - (performance.now() - askedAt)),
        cpus: availableParallelism(),
      });
      const look = (): void => {
        if (finished) return;
        const wait = limit.next();
        if (wait > 0) {
          timer = setTimeout(look, wait);
          return;
        }
        this.stopped++;
        this.#end(r);
        done(this.#overTime(limit, wallCapMs));
      };
      look();
    });
    if (!answer.ok || !('core' in answer)) return answer;
    // Its word is not enough: the module must be metered (accept-compiled-core.ts).
    const accepted = await acceptCompiledCore(answer, limits);
    if (accepted.broken) {
      this.refusedOutputs++;
      this.#end(r);
    }
    if (accepted.result.ok) this.#compileDeaths.forget(accepted.result.policy.sha256);
    return accepted.result;
  }

  /**
   * A compile process that had `bytes` as its only job died (`how`): "try again" the first time,
   * the policy refused from the second. Hashed off the main thread (WebCrypto runs in libuv's
   * pool): the bytes may be 256 MiB, and only a death pays for it.
   */
  async #killedBy(bytes: Uint8Array, how: string): Promise<CompileResult> {
    let sha256: string;
    try {
      sha256 = Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
    } catch (err) {
      return this.#unavailable(
        `the compile process died while compiling the policy${how}, and its bytes could not be hashed (${errorText(err)}): try again`,
      );
    }
    const { deaths } = this.#compileDeaths.record(sha256, how);
    if (deaths < DEATHS_REFUSED)
      return this.#unavailable(
        `the compile process died while compiling the policy${how}; a new one is started: try again (if these bytes kill it again, they are refused)`,
      );
    return refused(
      `the compile process died ${deaths === 2 ? 'twice' : `${deaths} times`} while compiling these bytes (sha256 ${sha256}), the last time${how}. They are refused, not "try again": nothing was stored. Check the policy with \`capgate test\` and build it again (another toolchain version); if other policies kill it too, the compile process itself is failing (see the daemon's log). Asked again, the same bytes are compiled again`,
    );
  }

  /**
   * The answer to a compile stopped for its time. Past the CPU time limit, the policy's doing: it
   * is refused (422), as a heap exhaustion is. Past the wall-clock cap with CPU time to spare, the
   * host's doing (the SCHED_IDLE process got too little of a core, e.g. every core kept busy): the
   * same bytes may compile when the host is less busy, so it is a retryable 503, and nothing is
   * stored. A policy cannot get there by itself: a compile that waits on nothing but its own
   * threads spends CPU time all along, and the process reads no input but the job.
   */
  #overTime(limit: CpuLimit, wallCapMs: number): CompileResult {
    const used = seconds(limit.usedMs);
    if (limit.passed === 'cpu')
      return refused(
        `compiling the policy took more than the compile process's CPU time limit of ${seconds(limit.limitMs)} (it had used ${used}); it was stopped`,
      );
    return this.#unavailable(
      `compiling the policy did not finish within the compile process's wall-clock cap of ${seconds(wallCapMs)} (${this.#options.wallCapFactor}x its CPU time limit of ${seconds(limit.limitMs)}), having had only ${used} of CPU time: the host is too busy; it was stopped, try again`,
    );
  }

  /** A compile to be asked for again, once the launcher is back (at least a second from now). */
  #unavailable(message: string): CompilerUnavailable {
    const retryAfterS = Math.max(1, Math.ceil((this.#restartAt - Date.now()) / 1000));
    return { ok: false, kind: 'compiler-unavailable', message, retryAfterS };
  }

  /** A job was answered: with none left, the process ends (after idleMs). */
  #settled(): void {
    this.#pending--;
    if (this.#pending > 0 || this.#running === undefined) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#options.idleMs <= 0) return void this.#retire();
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      void this.#retire();
    }, this.#options.idleMs);
    this.#idleTimer.unref();
  }

  async #retire(): Promise<void> {
    const r = this.#running;
    if (r !== undefined) this.#end(r);
    await Promise.all([...this.#exiting].map((x) => x.exited));
  }

  /** Has the launcher kill `r` (nothing it does matters any more); it leaves #running at once, #exiting on exit. */
  #end(r: Running): void {
    if (this.#running === r) this.#running = undefined;
    if (r.dead) return;
    this.#exiting.add(r);
    this.#tell(r.launcher, { type: 'stop', proc: r.proc });
    // Held until it has exited: whoever awaits that (close() at shutdown) must not see the event
    // loop end first, with the rest of the shutdown never run. A launcher that does not report the
    // exit in time is killed, and the compile process with it (its parent-death signal).
    const grace = setTimeout(() => {
      if (!r.dead && !r.launcher.dead) r.launcher.child.kill('SIGKILL');
    }, STOP_GRACE_MS);
    void r.exited.then(() => clearTimeout(grace));
  }
}
