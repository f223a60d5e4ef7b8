// The daemon's side of the compile process: uploads and start-up recompiles run there, never in
// the daemon's process, one at a time, each within a time limit and with the process's heap
// capped. A job past its time is stopped by killing the process; one that exhausts the heap
// kills only that process. Either way the upload gets a clear refusal and the next job gets a
// fresh process.
//
// The process ends once it has had nothing to compile for `idleMs` (1 s): the pipeline
// (binaryen, jco's wasm-tools) costs ~100 MB while loaded, and a worker thread would not give it
// back when it ends (most of it stayed in the daemon's allocator arenas: +90 MB measured). The
// second of grace lets a sequence of compiles (the policy directory's, a script's pushes) share
// one process: starting one and loading the pipeline costs ~8x a warm compile. A process returns all of it, and only its compiled output crosses back: the
// instrumented core module's bytes, compiled again here by WebAssembly.compile (asynchronous,
// off this thread), which is also the one Module the evaluation workers share.
//
// The process is sandboxed (compile-sandbox.ts: no capability on any thread, no_new_privs, a
// seccomp filter, low rlimits, no inherited descriptor). It says so when ready, and this side
// checks every thread of it in /proc before it sends the first byte; one that could not is
// ended, and the compile refused, naming what is missing, unless `allowUnsandboxed`.
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { CompileResult } from '../api.ts';
import type { EngineLimits } from '../limits.ts';
import type { CompileJob, FromCompileProcess, SandboxReport } from './compile-protocol.ts';
import { startNodeProcess } from '../../bootstrap/node-process.ts';
import { unconfinedThread } from '../../os/thread-credentials.ts';

const ENTRY = new URL('./compile-launch.ts', import.meta.url);

export interface CompileProcessOptions {
  /** Wall-clock limit of one compile, from the moment a ready process takes it. */
  timeoutMs: number;
  /** The process's JS heap (old generation), in MiB. */
  maxHeapMb: number;
  /** A process with nothing to compile for this long is ended; the next job starts a new one. */
  idleMs: number;
  /**
   * Compile in a process that could not sandbox itself (no seccomp, an unknown architecture)
   * instead of refusing: it then runs as the daemon's user with its capabilities.
   */
  allowUnsandboxed: boolean;
}

export const DEFAULT_COMPILE_PROCESS: Readonly<CompileProcessOptions> = Object.freeze({
  timeoutMs: 30_000,
  maxHeapMb: 512,
  idleMs: 1000,
  allowUnsandboxed: false,
});

/** The end of the process's stderr kept to say why it died (V8 prints its heap-limit error there). */
const STDERR_TAIL_CHARS = 2000;

interface Running {
  child: ChildProcess;
  /** Resolves once the process loaded the pipeline; rejects if it died first. */
  ready: Promise<void>;
  exited: Promise<void>;
  dead: boolean;
  stderrTail: string;
}

function refused(message: string): CompileResult {
  return { ok: false, kind: 'invalid-module', message };
}

export class CompileProcess {
  readonly #options: CompileProcessOptions;
  #running: Running | undefined;
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
  /** Processes started so far (tests, benchmarks). */
  started = 0;
  /** What the last process to start said of its sandbox (tests, benchmarks). */
  lastSandbox: SandboxReport | undefined;

  constructor(options: Partial<CompileProcessOptions> = {}) {
    this.#options = { ...DEFAULT_COMPILE_PROCESS, ...options };
  }

  /** The pid of the compile process while one runs (tests, benchmarks). */
  get pid(): number | undefined {
    return this.#running?.dead === false ? this.#running.child.pid : undefined;
  }

  /** `timeoutMs`: this job's time limit, instead of the process's. */
  compile(bytes: Uint8Array, limits: EngineLimits, timeoutMs = this.#options.timeoutMs): Promise<CompileResult> {
    this.#pending++;
    clearTimeout(this.#idleTimer);
    const run = this.#tail.then(() => this.#run(bytes, limits, timeoutMs)).finally(() => this.#settled());
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

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    await this.#retire();
  }

  #spawn(): Running {
    this.started++;
    const child = startNodeProcess(
      ENTRY,
      [`--max-old-space-size=${this.#options.maxHeapMb}`, '--max-semi-space-size=16'],
      // Pipes, not /dev/null: the daemon opens nothing outside its directories for it.
      { stdio: ['pipe', 'pipe', 'pipe', 'ipc'] },
    );
    child.stdin?.end();
    child.stdout?.resume();
    const r: Running = { child, ready: Promise.resolve(), exited: Promise.resolve(), dead: false, stderrTail: '' };
    const stderr = child.stderr as (Readable & { unref?: () => void }) | null;
    stderr?.setEncoding('utf8');
    stderr?.on('data', (s: string) => (r.stderrTail = (r.stderrTail + s).slice(-STDERR_TAIL_CHARS)));
    r.exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        r.dead = true;
        this.#exiting.delete(r);
        if (this.#running === r) this.#running = undefined;
        resolve();
      }),
    );
    r.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: FromCompileProcess): void => {
        if (m.type !== 'ready') return;
        child.off('message', onMessage);
        const unsandboxed = this.#unsandboxed(m.sandbox, child.pid);
        if (unsandboxed === undefined || this.#options.allowUnsandboxed) return resolve();
        this.#end(r);
        reject(
          new Error(
            `the compile process could not sandbox itself: ${unsandboxed}. Policies are not compiled unsandboxed, as root; fix what is missing, or set engine.allowUnsandboxedCompile to compile without the sandbox`,
          ),
        );
      };
      child.on('message', onMessage);
      child.once('error', (err) => reject(new Error(`the compile process could not start: ${err.message}`)));
      void r.exited.then(() => reject(new Error(`the compile process exited during start-up${this.#why(r)}`)));
    });
    r.ready.catch(() => undefined);
    // Neither the process nor its pipes keep the caller's event loop alive (as a worker would not).
    child.unref();
    child.channel?.unref();
    for (const pipe of [child.stdout, stderr] as Array<(Readable & { unref?: () => void }) | null>) pipe?.unref?.();
    return r;
  }

  /** What the process lacks of its sandbox, from its word and from /proc; undefined: nothing. */
  #unsandboxed(report: SandboxReport | undefined, pid: number | undefined): string | undefined {
    this.lastSandbox = report;
    if (typeof report !== 'object' || report === null) return 'it did not say (an older compile process?)';
    if (!report.applied) return typeof report.missing === 'string' ? report.missing : 'it did not say what';
    if (pid === undefined) return 'it has no pid';
    // Its word is not enough: every thread, as the kernel reports it.
    try {
      return unconfinedThread(pid);
    } catch (err) {
      return `its threads could not be checked in /proc: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  #why(r: Running): string {
    const code = r.child.exitCode;
    const signal = r.child.signalCode;
    const how = signal !== null ? ` (${signal})` : code !== null ? ` (exit code ${code})` : '';
    const said = r.stderrTail.trim().split('\n').slice(-3).join(' ').slice(0, 500);
    return `${how}${said ? `: ${said}` : ''}`;
  }

  async #run(bytes: Uint8Array, limits: EngineLimits, timeoutMs: number): Promise<CompileResult> {
    if (this.#closed) return refused('the engine is closed');
    const r = (this.#running ??= this.#spawn());
    try {
      await r.ready;
    } catch (err) {
      return refused(`the policy could not be compiled: ${err instanceof Error ? err.message : String(err)}`);
    }
    const id = this.#nextId++;
    let finished = false;
    const answer = await new Promise<(FromCompileProcess & { type: 'result' }) | CompileResult>((resolve) => {
      const done = (res: (FromCompileProcess & { type: 'result' }) | CompileResult): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        r.child.off('message', onMessage);
        resolve(res);
      };
      const onMessage = (m: FromCompileProcess): void => {
        if (m.type === 'result' && m.id === id) done(m);
      };
      void r.exited.then(() => {
        if (finished) return;
        const oom = /heap limit|out of memory/i.test(r.stderrTail);
        this.stopped += oom ? 1 : 0;
        done(
          refused(
            oom
              ? `compiling the policy exhausted the compile process's memory limit of ${this.#options.maxHeapMb} MiB; it was stopped${this.#why(r)}`
              : `the compile process died while compiling the policy${this.#why(r)}`,
          ),
        );
      });
      const timer = setTimeout(() => {
        this.stopped++;
        this.#end(r);
        done(refused(`compiling the policy took longer than ${timeoutMs} ms; it was stopped`));
      }, timeoutMs);
      r.child.on('message', onMessage);
      r.child.send({ id, bytes, limits } satisfies CompileJob);
    });
    if (!('type' in answer)) return answer;
    const wire = answer.result;
    if (!wire.ok) return wire;
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(wire.core);
    } catch (err) {
      return refused(
        `the compiled policy does not compile here (engine bug): ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return { ok: true, policy: { ...wire.policy, module } };
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

  /** Kills `r` (nothing it does matters any more); it leaves #running at once, #exiting on exit. */
  #end(r: Running): void {
    if (this.#running === r) this.#running = undefined;
    if (r.dead) return;
    this.#exiting.add(r);
    // Held until it has exited: whoever awaits that (close() at shutdown) must not see the event
    // loop end first, with the rest of the shutdown never run.
    r.child.ref();
    r.child.kill('SIGKILL');
  }
}
