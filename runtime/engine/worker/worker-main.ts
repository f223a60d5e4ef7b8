// The evaluation worker: caches compiled policies by sha256, builds Capabilities from each job's
// spec (so host calls run here, not on the main thread), evaluates in a fresh instance, answers.
// Between jobs it keeps, per policy, a prepared fresh instance and recycled zeroed memories, so
// the critical path is mostly the guest's own run.
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { createCapabilities, loadLinuxCapabilities } from '../../capabilities/create.ts';
import { mirrorPidfdsInto } from '../../os/pidfd-ledger.ts';
import { EffectJournal } from '../../effects/effect-journal.ts';
import { EffectLedgerWriter } from '../../effects/effect-ledger.ts';
import { effectSink, type IntentLog } from '../../effects/effect-sink.ts';
import type { Capabilities } from '../../capabilities/capabilities.ts';
import type { CapabilitySpec } from '../../capabilities/spec.ts';
import type { PolicyRequest } from '../../contract/types.ts';
import { evaluatePrepared, type PreparedInstance } from '../evaluate-instance.ts';
import { FUEL_GLOBAL } from '../instrumentation-globals.ts';
import { InstanceFactory } from '../instance-factory.ts';
import type { EngineLimits } from '../limits.ts';
import { denyOutcome } from '../deny-outcome.ts';
import type { Outcome } from '../outcome.ts';
import { replayingCapabilities, type TapeEntry } from '../speculative/capability-tape.ts';
import { ByteReader, ByteWriter, MailboxOverflow } from './byte-codec.ts';
import { readJob } from './job-codec.ts';
import { writeOutcome } from './outcome-codec.ts';
import { CONTROL, type FromWorker, type ToWorker, type WorkerInit } from './protocol.ts';
import { SpecCache } from './spec-cache.ts';
import { AdaptiveSpin } from './adaptive-spin.ts';
import { EVALUATION_NICE, niceThisThread } from '../../os/thread-priority.ts';
import { nameThisThread } from '../../os/thread-name.ts';
import { currentThreadId } from '../../os/thread-id.ts';

interface Loaded {
  module: WebAssembly.Module;
  limits: EngineLimits;
  /** Instrumented modules run no guest code at instantiation, so one can be made ahead. */
  prepareAhead: boolean;
  /** Makes its fresh instances (shared host imports, recycled memories). */
  instances: InstanceFactory;
}

/** This thread's name in /proc/<pid>/task/<tid>/comm. */
const EVALUATION_THREAD_NAME = 'capgate-eval';

const init = workerData as WorkerInit;
const control = new Int32Array(init.control);
const jobBox = new Uint8Array(init.jobBox);
const answerBox = new Uint8Array(init.answerBox);
const policies = new Map<string, Loaded>();
const specs = new SpecCache();
const ledger = new EffectLedgerWriter(init.effects);
// Mapped once (with the Linux capabilities, below); a journal that cannot be mapped makes every
// effect refuse (no intent, no act).
let journal: EffectJournal | Error | undefined;
const journalForEffects: IntentLog = {
  append(context, intent) {
    if (journal instanceof Error) throw new Error(`the effects journal could not be mapped: ${journal.message}`);
    if (journal === undefined) throw new Error('the effects journal is not mapped in this worker');
    return journal.append(context, intent);
  },
  clear(slot) {
    if (journal instanceof EffectJournal) journal.clear(slot);
  },
};
// Test seam: stop the thread right after an effect, as a crash at the worst moment would.
const afterEffect = init.exitAfterEffect === true ? (): never => process.exit(70) : undefined;

// A fresh instance of the last policy used, made after answering, off the critical path. It is
// still fresh when used (never evaluated before) and is consumed by exactly one job.
let spare: { sha256: string; prepared: PreparedInstance } | undefined;

function dropSpare(sha256: string): void {
  if (spare?.sha256 === sha256) spare = undefined; // its memory is not recycled: never reused
}

function takeInstance(sha256: string, policy: Loaded): PreparedInstance {
  if (spare !== undefined && spare.sha256 === sha256) {
    const p = spare.prepared;
    spare = undefined;
    return p;
  }
  return policy.instances.prepare();
}

/** One decision; returns the instance used (to recycle its memory once answered). */
function evaluateJob(
  id: number,
  policy: Loaded | undefined,
  sha256: string,
  request: PolicyRequest,
  spec: () => CapabilitySpec,
  replay?: TapeEntry[],
  context?: string,
): { outcome: Outcome; used?: PreparedInstance } {
  ledger.begin(id);
  if (policy === undefined)
    return { outcome: denyOutcome('host-error', `policy ${sha256} is not loaded in the worker`) };
  let used: PreparedInstance | undefined;
  let capabilities: Capabilities | undefined;
  try {
    const effects = effectSink({
      ...(init.effectsJournal !== undefined && context !== undefined ? { journal: journalForEffects, context } : {}),
      ledger,
      ...(afterEffect ? { afterEffect } : {}),
    });
    const live = createCapabilities(spec(), effects);
    const replaying = replay === undefined ? undefined : replayingCapabilities(live, replay);
    capabilities = replaying ?? live;
    used = takeInstance(sha256, policy);
    const outcome = evaluatePrepared(used, request, capabilities, policy.limits);
    if (replaying !== undefined && replaying.unreplayed > 0 && outcome.errorKind !== 'host-error') {
      // More fuel and a deeper stack can only take the same path further: fewer calls is divergence.
      const detail = `replay diverged: the repeated run made ${replay!.length - replaying.unreplayed} of the ${replay!.length} capability calls of the first run`;
      return {
        outcome: { ...outcome, decision: 'deny', reason: 'host-error', errorKind: 'host-error', errorDetail: detail },
        used,
      };
    }
    return { outcome, used };
  } catch (err) {
    // evaluatePrepared does not throw; createCapabilities can (e.g. Linux capabilities unavailable).
    return {
      outcome: denyOutcome('host-error', err instanceof Error ? err.message : String(err)),
      ...(used ? { used } : {}),
    };
  } finally {
    capabilities?.release?.();
  }
}

function answer(id: number, outcome: Outcome): void {
  let length = -1;
  try {
    const w = new ByteWriter(answerBox);
    w.u32(id);
    writeOutcome(w, outcome);
    length = w.pos;
  } catch (err) {
    if (!(err instanceof MailboxOverflow)) throw err;
  }
  if (length < 0) init.results.postMessage({ id, outcome } satisfies FromWorker);
  Atomics.store(control, CONTROL.answerLength, length);
  Atomics.add(control, CONTROL.answers, 1);
  Atomics.notify(control, CONTROL.answers);
}

/** After answering, off the critical path: recycle the used memory, prepare the next instance. */
function afterAnswer(sha256: string, used: PreparedInstance | undefined): void {
  const policy = policies.get(sha256);
  if (policy === undefined) return;
  // The instance that used this memory is never called again, so the memory can be scrubbed.
  if (used !== undefined) policy.instances.recycle(used);
  if (policy.prepareAhead && spare?.sha256 !== sha256) spare = { sha256, prepared: policy.instances.prepare() };
}

function run(
  id: number,
  sha256: string,
  request: PolicyRequest,
  spec: () => CapabilitySpec,
  replay?: TapeEntry[],
  context?: string,
): void {
  const policy = policies.get(sha256);
  const { outcome, used } = evaluateJob(id, policy, sha256, request, spec, replay, context);
  // What recycling will drop (a memory that grew) is reported with the answer, which goes first.
  const dropped = used !== undefined && policy !== undefined ? policy.instances.dropsOnRecycle(used) : 0;
  answer(id, dropped > 0 ? { ...outcome, droppedMemoryBytes: dropped } : outcome);
  afterAnswer(sha256, used);
}

function handle(message: ToWorker): void {
  switch (message.type) {
    case 'load': {
      const prepareAhead = WebAssembly.Module.exports(message.module).some((e) => e.name === FUEL_GLOBAL);
      policies.set(message.sha256, {
        module: message.module,
        limits: message.limits,
        prepareAhead,
        instances: new InstanceFactory(message.module),
      });
      dropSpare(message.sha256);
      return;
    }
    case 'unload':
      policies.delete(message.sha256);
      dropSpare(message.sha256);
      return;
    case 'evaluate':
      run(message.id, message.sha256, message.request, () => message.capabilities, message.replay, message.context);
      return;
  }
}

function takeMailboxJob(): void {
  const job = readJob(new ByteReader(jobBox));
  Atomics.store(control, CONTROL.jobPending, 0);
  run(job.id, job.sha256, job.request, () => specs.get(job.spec), undefined, job.context);
}

// Below the main thread, which serves every VM: policy code here yields to it (os/thread-priority.ts).
// A thread that cannot be lowered (no koffi) still evaluates, at the daemon's priority.
try {
  niceThisThread(EVALUATION_NICE);
} catch {}
// Its kernel id, for a main side that times its jobs on this thread's CPU clock (the simulator).
try {
  Atomics.store(control, CONTROL.threadId, currentThreadId());
} catch {}
// Named, so that top -H and the isolation bench tell it from the daemon's other threads.
try {
  nameThisThread(EVALUATION_THREAD_NAME);
} catch {}
if (init.linuxCapabilities) {
  mirrorPidfdsInto(init.pidfds);
  await loadLinuxCapabilities();
  if (init.effectsJournal !== undefined) {
    try {
      const j = EffectJournal.attach(init.effectsJournal, init.journalOwner);
      ledger.mapped(j.address);
      journal = j;
    } catch (err) {
      journal = err instanceof Error ? err : new Error(String(err));
    }
  }
}
Atomics.store(control, CONTROL.ready, 1);
Atomics.notify(control, CONTROL.ready);

// Blocks this thread between jobs; terminate() from the main side still ends it.
// Between jobs it polls briefly first (adaptive-spin.ts): back-to-back jobs then skip the futex
// sleep and wake-up.
const spin = new AdaptiveSpin();
let seen = 0;
for (;;) {
  if (Atomics.load(control, CONTROL.jobs) === seen) {
    const idle = process.hrtime.bigint();
    const until = idle + spin.ns;
    while (Atomics.load(control, CONTROL.jobs) === seen && process.hrtime.bigint() < until);
    Atomics.wait(control, CONTROL.jobs, seen);
    spin.record(process.hrtime.bigint() - idle);
  }
  seen = Atomics.load(control, CONTROL.jobs);
  // Port first: a policy load is posted before the job that needs it.
  for (let m = receiveMessageOnPort(init.jobs); m !== undefined; m = receiveMessageOnPort(init.jobs)) {
    handle(m.message as ToWorker);
  }
  if (Atomics.load(control, CONTROL.jobPending) === 1) takeMailboxJob();
}
