// One evaluation worker and its channel, from the main side. Runs one job at a time with a
// wall-clock deadline; on expiry (or a crash) it terminates the worker, answers for the job, and
// respawns it with every loaded policy re-sent.
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { EngineLimits } from '../limits.ts';
import type { Outcome } from '../outcome.ts';
import { waitAsync } from './wait-async.ts';
import { CONTROL, type FromWorker, type ToWorker, type WorkerInit } from './protocol.ts';

const BOOTSTRAP = new URL('./bootstrap.mjs', import.meta.url);

export interface LoadedPolicy {
  module: WebAssembly.Module;
  limits: EngineLimits;
}

export type EvaluateJob = Omit<Extract<ToWorker, { type: 'evaluate' }>, 'type' | 'id'>;

interface Incarnation {
  worker: Worker;
  control: Int32Array;
  jobs: MessagePort;
  results: MessagePort;
  ready: Promise<void>;
  /** Set when this incarnation ended (terminated or crashed). */
  dead: boolean;
  /** Set once the worker signalled it is ready. */
  started: boolean;
  exitReason?: string;
}

interface InFlight {
  id: number;
  settle: (outcome: Outcome) => void;
  started: number;
}

function failure(kind: 'timeout' | 'host-error', detail: string, durationUs: number): Outcome {
  return { decision: 'deny', reason: kind, errorKind: kind, errorDetail: detail, fuelUsed: 0, durationUs, capabilityCalls: [], logs: [] };
}

export class WorkerSlot {
  readonly #policies: ReadonlyMap<string, LoadedPolicy>;
  readonly #linuxCapabilities: boolean;
  #current: Incarnation;
  #inFlight: InFlight | undefined;
  #nextId = 1;
  #closed = false;
  #respawns = 0;
  /** Consecutive incarnations that died before becoming ready; drives the respawn backoff. */
  #startFailures = 0;
  #respawnTimer: NodeJS.Timeout | undefined;

  /** `policies` is the pool's live map: a respawned worker gets everything in it. */
  constructor(policies: ReadonlyMap<string, LoadedPolicy>, linuxCapabilities: boolean) {
    this.#policies = policies;
    this.#linuxCapabilities = linuxCapabilities;
    this.#current = this.#spawn();
  }

  /** Times this slot's worker was replaced (deadline or crash). */
  get respawns(): number {
    return this.#respawns;
  }

  get threadId(): number {
    return this.#current.worker.threadId;
  }

  ready(): Promise<void> {
    return this.#current.ready;
  }

  #spawn(): Incarnation {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL.length * 4));
    const jobs = new MessageChannel();
    const results = new MessageChannel();
    const init: WorkerInit = { control: control.buffer as SharedArrayBuffer, jobs: jobs.port2, results: results.port2, linuxCapabilities: this.#linuxCapabilities };
    const worker = new Worker(BOOTSTRAP, { workerData: init, transferList: [jobs.port2, results.port2] });
    const inc: Incarnation = { worker, control, jobs: jobs.port1, results: results.port1, ready: Promise.resolve(), dead: false, started: false };
    // Loaded policies go first: the port is ordered, so they precede any job.
    for (const [sha256, p] of this.#policies) this.#post(inc, { type: 'load', sha256, module: p.module, limits: p.limits });
    inc.ready = new Promise<void>((resolve, reject) => {
      const onExit = (code: number): void => reject(new Error(`evaluation worker exited with code ${code} during start-up${inc.exitReason ? `: ${inc.exitReason}` : ''}`));
      worker.once('exit', onExit);
      const check = (): void => {
        if (Atomics.load(control, CONTROL.ready) === 1) {
          inc.started = true;
          worker.off('exit', onExit);
          resolve();
          return;
        }
        if (inc.dead) return; // onExit rejected
        const w = waitAsync(control, CONTROL.ready, 0, 1000);
        void (w.async ? w.value : Promise.resolve()).then(check);
      };
      check();
    });
    inc.ready.catch(() => undefined); // observed by callers of ready()/run()
    worker.on('error', (err) => {
      inc.exitReason = err.message;
    });
    worker.on('exit', () => {
      inc.dead = true;
      if (this.#current === inc) this.#onUnexpectedExit(inc);
    });
    return inc;
  }

  #post(inc: Incarnation, message: ToWorker): void {
    inc.jobs.postMessage(message);
    Atomics.add(inc.control, CONTROL.jobs, 1);
    Atomics.notify(inc.control, CONTROL.jobs);
  }

  /** Sends to the current worker; a respawned one gets policies from the shared map instead. */
  send(message: Extract<ToWorker, { type: 'load' | 'unload' }>): void {
    if (!this.#current.dead) this.#post(this.#current, message);
  }

  #onUnexpectedExit(inc: Incarnation): void {
    const job = this.#inFlight;
    this.#inFlight = undefined;
    if (job !== undefined) {
      job.settle(failure('host-error', `the evaluation worker died: ${inc.exitReason ?? 'exited'}`, Math.round((performance.now() - job.started) * 1000)));
    }
    if (this.#closed) return;
    if (inc.started) {
      this.#startFailures = 0;
      this.#replace();
      return;
    }
    // A worker that cannot even start (broken install, missing loader) would otherwise respawn
    // in a hot loop; back off, and answer jobs meanwhile with host-error (see run()).
    this.#startFailures++;
    const delay = Math.min(5_000, 50 * 2 ** this.#startFailures);
    this.#respawnTimer = setTimeout(() => {
      this.#respawnTimer = undefined;
      if (!this.#closed && this.#current === inc) this.#replace();
    }, delay);
  }

  #replace(): void {
    const old = this.#current;
    this.#respawns++;
    this.#current = this.#spawn();
    old.jobs.close();
    old.results.close();
  }

  /** Runs one job; never rejects. The caller guarantees the slot is not busy. */
  async run(job: EvaluateJob, deadlineMs: number): Promise<Outcome> {
    if (this.#inFlight !== undefined) throw new Error('WorkerSlot.run: slot is busy (pool bug)');
    const inc = this.#current;
    const started = performance.now();
    try {
      await inc.ready;
    } catch (err) {
      // The exit handler schedules the respawn.
      return failure('host-error', `the evaluation worker could not start: ${err instanceof Error ? err.message : String(err)}`, 0);
    }
    const id = this.#nextId++;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const settle = (o: Outcome): void => {
        if (settled) return;
        settled = true;
        if (this.#inFlight?.id === id) this.#inFlight = undefined;
        resolve(o);
      };
      this.#inFlight = { id, settle, started };
      const answered = Atomics.load(inc.control, CONTROL.answers);
      try {
        this.#post(inc, { type: 'evaluate', id, ...job });
      } catch (err) {
        // e.g. DataCloneError: a request or CapabilitySpec that is not plain data.
        settle(failure('host-error', `could not send the job to the evaluation worker: ${err instanceof Error ? err.message : String(err)}`, 0));
        return;
      }
      // The deadline runs from dispatch: waiting for a (re)starting worker is not the policy's time.
      const deadlineAt = performance.now() + deadlineMs;
      // Wakes can be spurious (the worker's notify for the previous answer may land on this
      // wait), so the condition is re-checked on every wake: the counter, not the wake, says done.
      const check = (): void => {
        if (settled) return;
        if (Atomics.load(inc.control, CONTROL.answers) !== answered) {
          // The worker posts before it bumps the counter: the answer is on the port.
          const m = receiveMessageOnPort(inc.results);
          const answer = m?.message as FromWorker | undefined;
          if (answer !== undefined && answer.id === id) {
            settle(answer.outcome);
            return;
          }
          settle(failure('host-error', 'the evaluation worker signalled an answer that was not on its port (engine bug)', Math.round((performance.now() - started) * 1000)));
          return;
        }
        const remaining = deadlineAt - performance.now();
        if (remaining > 0) {
          const w = waitAsync(inc.control, CONTROL.answers, answered, remaining);
          if (w.async) void w.value.then(check);
          else queueMicrotask(check);
          return;
        }
        // Deadline passed with no answer: the only way to stop a running wasm loop is to kill its thread.
        const elapsedUs = Math.round((performance.now() - started) * 1000);
        settle(failure('timeout', `no decision within the ${deadlineMs} ms deadline; the worker was terminated`, elapsedUs));
        if (this.#current === inc && !this.#closed) {
          this.#replace();
          void inc.worker.terminate();
        }
      };
      check();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#respawnTimer !== undefined) clearTimeout(this.#respawnTimer);
    this.#inFlight?.settle(failure('host-error', 'the engine was closed', 0));
    const inc = this.#current;
    inc.jobs.close();
    inc.results.close();
    await inc.worker.terminate();
  }
}
