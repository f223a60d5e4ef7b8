// One evaluation worker and its channel, from the main side. Runs one job at a time with a
// wall-clock deadline (or, for the simulator, a deadline of the worker thread's CPU time under a
// wall-clock cap: cpu-deadline.ts); on expiry (or a crash) it terminates the worker, answers for
// the job, and respawns it with every loaded policy re-sent.
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { startWorker } from '../../bootstrap/worker-thread.ts';
import type { EngineLimits } from '../limits.ts';
import { denyOutcome } from '../deny-outcome.ts';
import type { Outcome } from '../outcome.ts';
import { closeLeftoverPidfds, newPidfdLedger } from '../../os/pidfd-ledger.ts';
import { waitAsync } from './wait-async.ts';
import { ByteReader, ByteWriter, MailboxOverflow } from './byte-codec.ts';
import { serializeSpec, writeJob } from './job-codec.ts';
import { readOutcome } from './outcome-codec.ts';
import { CONTROL, MAILBOX_BYTES, type FromWorker, type ToWorker, type WorkerInit } from './protocol.ts';
import { ledgerMapping, newEffectLedger } from '../../effects/effect-ledger.ts';
import { MAIN_THREAD, SLOT_BYTES, type EffectJournal } from '../../effects/effect-journal.ts';
import { libc } from '../../os/libc.ts';
import type { TapeEntry } from '../speculative/capability-tape.ts';
import { stoppedJobCalls } from './ledger-calls.ts';
import { CpuDeadline, type CpuDeadlineClocks } from './cpu-deadline.ts';

const ENTRY = new URL('./worker-main.ts', import.meta.url);

export interface LoadedPolicy {
  module: WebAssembly.Module;
  limits: EngineLimits;
}

export type EvaluateJob = Omit<Extract<ToWorker, { type: 'evaluate' }>, 'type' | 'id'>;

interface Incarnation {
  worker: Worker;
  control: Int32Array;
  jobBox: Uint8Array;
  answerBox: Uint8Array;
  jobs: MessagePort;
  results: MessagePort;
  pidfds: SharedArrayBuffer;
  effects: SharedArrayBuffer;
  ready: Promise<void>;
  /** Resolves once the thread has exited. */
  exited: Promise<void>;
  /** Set when this incarnation ended (terminated or crashed). */
  dead: boolean;
  /** Set once the worker signalled it is ready. */
  started: boolean;
  exitReason?: string;
  /** Its thread's CPU clock, once read for a CPU deadline (null: it cannot be read). */
  cpuClock?: (() => number) | null;
}

interface InFlight {
  id: number;
  settle: (outcome: Outcome) => void;
  started: number;
  replay: TapeEntry[] | undefined;
}

export interface WorkerSlotOptions {
  /** Load the Linux capabilities in the worker (the daemon); the simulator and tests do without. */
  linuxCapabilities: boolean;
  /** The daemon's effects journal, which workers map to record intents; none: not journaled. */
  effectsJournal?: EffectJournal;
  /** Test seam: the worker exits right after its first effect. */
  exitAfterEffect?: boolean;
  /** Count each job's deadline in the CPU time of the worker's thread, under a wall-clock cap (the
   * simulator); none: the deadline is wall-clock (the daemon: what a client waits for). */
  cpuDeadline?: CpuDeadlineClocks;
}

/** How long a timed-out job waits for its worker's thread to stop before it is answered anyway. */
const TERMINATE_GRACE_MS = 1000;
/** How long close() waits for a worker still starting before it terminates it anyway. */
const CLOSE_STARTUP_WAIT_MS = 10_000;

/** Ids of worker incarnations in the effects journal's slot claims (MAIN_THREAD is 1). */
let nextJournalOwner = MAIN_THREAD + 1;

export class WorkerSlot {
  readonly #policies: ReadonlyMap<string, LoadedPolicy>;
  readonly #options: WorkerSlotOptions;
  #current: Incarnation;
  #inFlight: InFlight | undefined;
  #nextId = 1;
  #closed = false;
  #respawns = 0;
  /** Consecutive incarnations that died before becoming ready; drives the respawn backoff. */
  #startFailures = 0;
  #respawnTimer: NodeJS.Timeout | undefined;

  /** `policies` is the pool's live map: a respawned worker gets everything in it. */
  constructor(policies: ReadonlyMap<string, LoadedPolicy>, options: WorkerSlotOptions) {
    this.#policies = policies;
    this.#options = options;
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

  /** Whether the current worker signalled it is ready (tests). */
  get started(): boolean {
    return this.#current.started;
  }

  #spawn(): Incarnation {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL.length * 4));
    const jobBox = new SharedArrayBuffer(MAILBOX_BYTES);
    const answerBox = new SharedArrayBuffer(MAILBOX_BYTES);
    const jobs = new MessageChannel();
    const results = new MessageChannel();
    const pidfds = newPidfdLedger();
    const effects = newEffectLedger();
    const init: WorkerInit = {
      control: control.buffer as SharedArrayBuffer,
      jobBox,
      answerBox,
      jobs: jobs.port2,
      results: results.port2,
      linuxCapabilities: this.#options.linuxCapabilities,
      pidfds,
      effects,
      ...(this.#options.effectsJournal !== undefined ? { effectsJournal: this.#options.effectsJournal.shared } : {}),
      journalOwner: nextJournalOwner++,
      ...(this.#options.exitAfterEffect === true ? { exitAfterEffect: true } : {}),
    };
    const worker = startWorker(ENTRY, { workerData: init, transferList: [jobs.port2, results.port2] });
    const inc: Incarnation = {
      worker,
      control,
      jobBox: new Uint8Array(jobBox),
      answerBox: new Uint8Array(answerBox),
      jobs: jobs.port1,
      results: results.port1,
      pidfds,
      effects,
      ready: Promise.resolve(),
      exited: new Promise<void>((resolve) => worker.once('exit', () => resolve())),
      dead: false,
      started: false,
    };
    // Loaded policies go first: the port is ordered, so they precede any job.
    for (const [sha256, p] of this.#policies)
      this.#post(inc, { type: 'load', sha256, module: p.module, limits: p.limits });
    inc.ready = new Promise<void>((resolve, reject) => {
      const onExit = (code: number): void =>
        reject(
          new Error(
            `evaluation worker exited with code ${code} during start-up${inc.exitReason ? `: ${inc.exitReason}` : ''}`,
          ),
        );
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
      closeLeftoverPidfds(inc.pidfds);
      // The thread is gone, and its views of the journal with it: unmap them.
      const mapping = ledgerMapping(inc.effects);
      if (mapping !== 0n && this.#options.effectsJournal !== undefined)
        libc().munmap(mapping, this.#options.effectsJournal.shared.slots * SLOT_BYTES);
      if (this.#current === inc) this.#onUnexpectedExit(inc);
    });
    return inc;
  }

  #post(inc: Incarnation, message: ToWorker): void {
    inc.jobs.postMessage(message);
    Atomics.add(inc.control, CONTROL.jobs, 1);
    Atomics.notify(inc.control, CONTROL.jobs);
  }

  /** Sends a job through the mailbox, or through the port when it does not fit the schema. */
  #postJob(inc: Incarnation, id: number, job: EvaluateJob): void {
    if (job.replay !== undefined) return this.#post(inc, { type: 'evaluate', id, ...job });
    const spec = serializeSpec(job.capabilities); // throws DataCloneError as postMessage would
    try {
      writeJob(new ByteWriter(inc.jobBox), id, job.sha256, job.request, spec, job.context);
    } catch (err) {
      if (!(err instanceof MailboxOverflow)) throw err;
      this.#post(inc, { type: 'evaluate', id, ...job });
      return;
    }
    Atomics.store(inc.control, CONTROL.jobPending, 1);
    Atomics.add(inc.control, CONTROL.jobs, 1);
    Atomics.notify(inc.control, CONTROL.jobs);
  }

  /** The answer the worker signalled: from the answer mailbox, or from the port. */
  #takeAnswer(inc: Incarnation): FromWorker | undefined {
    const length = Atomics.load(inc.control, CONTROL.answerLength);
    if (length < 0) return receiveMessageOnPort(inc.results)?.message as FromWorker | undefined;
    const r = new ByteReader(inc.answerBox.subarray(0, length));
    const id = r.u32();
    return { id, outcome: readOutcome(r) };
  }

  /** Sends to the current worker; a respawned one gets policies from the shared map instead. */
  send(message: Extract<ToWorker, { type: 'load' | 'unload' }>): void {
    if (!this.#current.dead) this.#post(this.#current, message);
  }

  #onUnexpectedExit(inc: Incarnation): void {
    const job = this.#inFlight;
    this.#inFlight = undefined;
    if (job !== undefined) {
      const calls = stoppedJobCalls(inc.effects, job.id, job.replay);
      job.settle(
        denyOutcome(
          'host-error',
          `the evaluation worker died: ${inc.exitReason ?? 'exited'}`,
          Math.round((performance.now() - job.started) * 1000),
          calls,
        ),
      );
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
  run(job: EvaluateJob, deadlineMs: number): Promise<Outcome> {
    if (this.#inFlight !== undefined) throw new Error('WorkerSlot.run: slot is busy (pool bug)');
    const inc = this.#current;
    const started = performance.now();
    // No extra await on the hot path once the worker is up.
    if (inc.started) return this.#send(inc, job, deadlineMs, started);
    return inc.ready.then(
      () => this.#send(inc, job, deadlineMs, started),
      // The exit handler schedules the respawn.
      (err: unknown) =>
        denyOutcome(
          'host-error',
          `the evaluation worker could not start: ${err instanceof Error ? err.message : String(err)}`,
          0,
        ),
    );
  }

  #send(inc: Incarnation, job: EvaluateJob, deadlineMs: number, started: number): Promise<Outcome> {
    const id = this.#nextId++;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const settle = (o: Outcome): void => {
        if (settled) return;
        settled = true;
        if (this.#inFlight?.id === id) this.#inFlight = undefined;
        resolve(o);
      };
      this.#inFlight = { id, settle, started, replay: job.replay };
      const answered = Atomics.load(inc.control, CONTROL.answers);
      try {
        this.#postJob(inc, id, job);
      } catch (err) {
        // e.g. DataCloneError: a request or CapabilitySpec that is not plain data.
        settle(
          denyOutcome(
            'host-error',
            `could not send the job to the evaluation worker: ${err instanceof Error ? err.message : String(err)}`,
            0,
          ),
        );
        return;
      }
      // The deadline runs from dispatch: waiting for a (re)starting worker is not the policy's time.
      const deadlineAt = performance.now() + deadlineMs;
      const cpu = this.#options.cpuDeadline === undefined ? undefined : this.#cpuDeadline(inc, deadlineMs);
      // Wakes can be spurious (the worker's notify for the previous answer may land on this
      // wait), so the condition is re-checked on every wake: the counter, not the wake, says done.
      const check = (): void => {
        if (settled) return;
        if (Atomics.load(inc.control, CONTROL.answers) !== answered) {
          // The worker writes (or posts) its answer before it bumps the counter.
          let answer: FromWorker | undefined;
          try {
            answer = this.#takeAnswer(inc);
          } catch (err) {
            settle(
              denyOutcome(
                'host-error',
                `the evaluation worker's answer could not be read (engine bug): ${err instanceof Error ? err.message : String(err)}`,
                Math.round((performance.now() - started) * 1000),
              ),
            );
            return;
          }
          if (answer !== undefined && answer.id === id) {
            settle(answer.outcome);
            return;
          }
          settle(
            denyOutcome(
              'host-error',
              'the evaluation worker signalled an answer that was not there or not for this job (engine bug)',
              Math.round((performance.now() - started) * 1000),
            ),
          );
          return;
        }
        const remaining = cpu === undefined ? deadlineAt - performance.now() : cpu.next();
        if (remaining > 0) {
          const w = waitAsync(inc.control, CONTROL.answers, answered, remaining);
          if (w.async) void w.value.then(check);
          else queueMicrotask(check);
          return;
        }
        // Deadline passed with no answer: the only way to stop a running wasm loop is to kill its
        // thread. The job is answered once the thread is gone: then nothing acts for it any more,
        // and the ledger says every call it made.
        if (this.#current === inc && !this.#closed) this.#replace();
        void inc.worker.terminate().catch(() => undefined);
        const answer = (detail: string): void => {
          const elapsedUs = Math.round((performance.now() - started) * 1000);
          settle(
            denyOutcome(
              'timeout',
              `${cpu?.describe() ?? `no decision within the ${deadlineMs} ms deadline`}; ${detail}`,
              elapsedUs,
              stoppedJobCalls(inc.effects, id, job.replay),
            ),
          );
        };
        // A thread stuck in a system call stops only when the call returns: the request is not
        // held for it past a grace period (what the ledger says then is what it did so far).
        const grace = setTimeout(
          () => answer('the worker was terminated (it had not stopped yet)'),
          TERMINATE_GRACE_MS,
        );
        void inc.exited.then(() => {
          clearTimeout(grace);
          answer('the worker was terminated');
        });
      };
      check();
    });
  }

  /** A job's CPU deadline, on the clock of the worker's thread (its id from the worker, at start). */
  #cpuDeadline(inc: Incarnation, deadlineMs: number): CpuDeadline {
    const clocks = this.#options.cpuDeadline!;
    if (inc.cpuClock === undefined) {
      const tid = Atomics.load(inc.control, CONTROL.threadId);
      inc.cpuClock = tid > 0 ? clocks.threadClock(tid) : null;
    }
    return new CpuDeadline(inc.cpuClock, deadlineMs, clocks);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#respawnTimer !== undefined) clearTimeout(this.#respawnTimer);
    this.#inFlight?.settle(denyOutcome('host-error', 'the engine was closed', 0));
    const inc = this.#current;
    inc.jobs.close();
    inc.results.close();
    // A worker still starting may be inside koffi, binding libc to lower its priority, and a
    // thread terminated there aborts the whole process (napi cannot throw into a terminating
    // thread: seen in the suite, when an engine closed right after a deadline had replaced its
    // worker). It is terminated once it is ready, or gone, or after a bound.
    if (!inc.started && !inc.dead) {
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([
        inc.ready.catch(() => undefined),
        new Promise<void>((resolve) => {
          bound = setTimeout(resolve, CLOSE_STARTUP_WAIT_MS);
        }),
      ]);
      clearTimeout(bound);
    }
    await inc.worker.terminate();
  }
}
