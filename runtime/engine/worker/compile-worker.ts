// The main side of the compile worker: uploads and start-up recompiles run there, never on the
// daemon's main thread, one at a time, each within a time limit and with the worker's heap
// capped (resourceLimits). A job past its time is stopped by terminating the worker; one that
// exhausts the heap kills only the worker. Either way the upload gets a clear refusal and the
// next job gets a fresh worker. An idle worker is retired (binaryen's memory never shrinks).
import type { Worker } from 'node:worker_threads';
import type { CompileResult } from '../api.ts';
import type { EngineLimits } from '../limits.ts';
import type { CompileJob, FromCompileWorker } from './compile-protocol.ts';
import { startWorker } from '../../bootstrap/worker-thread.ts';

const ENTRY = new URL('./compile-main.ts', import.meta.url);

export interface CompileWorkerOptions {
  /** Wall-clock limit of one compile, from the moment a ready worker takes it. */
  timeoutMs: number;
  /** The worker's JS heap (old generation), in MiB. */
  maxHeapMb: number;
  /** A worker idle this long is terminated; the next job starts a new one. */
  idleMs: number;
}

export const DEFAULT_COMPILE_WORKER: Readonly<CompileWorkerOptions> = Object.freeze({
  timeoutMs: 30_000,
  maxHeapMb: 512,
  idleMs: 30_000,
});

interface Running {
  worker: Worker;
  /** Resolves once the worker loaded the pipeline; rejects if it died first. */
  ready: Promise<void>;
  dead: boolean;
  exitReason?: string;
  /** Kernel thread id, once ready and lowered to its low CPU priority. */
  tid: number | null;
}

function refused(message: string): CompileResult {
  return { ok: false, kind: 'invalid-module', message };
}

export class CompileWorker {
  readonly #options: CompileWorkerOptions;
  #running: Running | undefined;
  /** Jobs run one after another. */
  #tail: Promise<unknown> = Promise.resolve();
  #nextId = 1;
  #idleTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Workers stopped for running past their time or out of memory (tests, metrics). */
  stopped = 0;

  constructor(options: Partial<CompileWorkerOptions> = {}) {
    this.#options = { ...DEFAULT_COMPILE_WORKER, ...options };
  }

  /** The running worker's kernel thread id when it runs at its low CPU priority (tests). */
  get threadId(): number | null {
    return this.#running?.tid ?? null;
  }

  /** `timeoutMs`: this job's time limit, instead of the worker's. */
  compile(bytes: Uint8Array, limits: EngineLimits, timeoutMs = this.#options.timeoutMs): Promise<CompileResult> {
    const run = this.#tail.then(() => this.#run(bytes, limits, timeoutMs));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    const r = this.#running;
    this.#running = undefined;
    if (r !== undefined && !r.dead) await r.worker.terminate();
  }

  #spawn(): Running {
    const worker = startWorker(ENTRY, {
      resourceLimits: { maxOldGenerationSizeMb: this.#options.maxHeapMb, maxYoungGenerationSizeMb: 32 },
    });
    const r: Running = { worker, ready: Promise.resolve(), dead: false, tid: null };
    r.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: FromCompileWorker): void => {
        if (m.type !== 'ready') return;
        r.tid = m.tid;
        worker.off('message', onMessage);
        resolve();
      };
      worker.on('message', onMessage);
      worker.once('exit', (code) =>
        reject(
          new Error(
            `the compile worker exited with code ${code} during start-up${r.exitReason ? `: ${r.exitReason}` : ''}`,
          ),
        ),
      );
    });
    r.ready.catch(() => undefined);
    worker.on('error', (err) => (r.exitReason = err.message));
    worker.once('exit', () => {
      r.dead = true;
      if (this.#running === r) this.#running = undefined;
    });
    worker.unref();
    return r;
  }

  async #run(bytes: Uint8Array, limits: EngineLimits, timeoutMs: number): Promise<CompileResult> {
    if (this.#closed) return refused('the engine is closed');
    clearTimeout(this.#idleTimer);
    const r = (this.#running ??= this.#spawn());
    try {
      await r.ready;
    } catch (err) {
      return refused(`the policy could not be compiled: ${err instanceof Error ? err.message : String(err)}`);
    }
    const id = this.#nextId++;
    const result = await new Promise<CompileResult>((resolve) => {
      const done = (res: CompileResult): void => {
        clearTimeout(timer);
        r.worker.off('message', onMessage);
        r.worker.off('exit', onExit);
        resolve(res);
      };
      const onMessage = (m: FromCompileWorker): void => {
        if (m.type === 'result' && m.id === id) done(m.result);
      };
      const onExit = (): void => {
        const oom = r.exitReason !== undefined && /memory|heap/i.test(r.exitReason);
        this.stopped += oom ? 1 : 0;
        done(
          refused(
            oom
              ? `compiling the policy exhausted the compile worker's memory limit of ${this.#options.maxHeapMb} MiB; it was stopped (${r.exitReason})`
              : `the compile worker died while compiling the policy${r.exitReason ? `: ${r.exitReason}` : ''}`,
          ),
        );
      };
      const timer = setTimeout(() => {
        this.stopped++;
        if (this.#running === r) this.#running = undefined;
        void r.worker.terminate();
        done(refused(`compiling the policy took longer than ${timeoutMs} ms; it was stopped`));
      }, timeoutMs);
      r.worker.on('message', onMessage);
      r.worker.once('exit', onExit);
      r.worker.postMessage({ id, bytes, limits } satisfies CompileJob);
    });
    if (!this.#closed && this.#running !== undefined) {
      this.#idleTimer = setTimeout(() => void this.#retire(), this.#options.idleMs);
      this.#idleTimer.unref();
    }
    return result;
  }

  async #retire(): Promise<void> {
    const r = this.#running;
    this.#running = undefined;
    if (r !== undefined && !r.dead) await r.worker.terminate();
  }
}
