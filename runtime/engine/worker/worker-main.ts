// The evaluation worker: caches compiled policies by sha256, builds Capabilities from each job's
// spec (so host calls run here, not on the main thread), evaluates in a fresh instance, answers.
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { createCapabilities, loadLinuxCapabilities } from '../../capabilities/create.ts';
import { evaluatePrepared, prepareInstance, type PreparedInstance } from '../evaluate-instance.ts';
import { FUEL_GLOBAL } from '../instrumentation-globals.ts';
import type { EngineLimits } from '../limits.ts';
import type { Outcome } from '../outcome.ts';
import { CONTROL, type FromWorker, type ToWorker, type WorkerInit } from './protocol.ts';

interface Loaded {
  module: WebAssembly.Module;
  limits: EngineLimits;
  /** Instrumented modules run no guest code at instantiation, so one can be made ahead. */
  prepareAhead: boolean;
}

const init = workerData as WorkerInit;
const control = new Int32Array(init.control);
const policies = new Map<string, Loaded>();

// A fresh instance of the last policy used, made after answering, off the critical path. It is
// still fresh when used (never evaluated before) and is consumed by exactly one job.
let spare: { sha256: string; prepared: PreparedInstance } | undefined;

function takeInstance(sha256: string, policy: Loaded): PreparedInstance {
  if (spare !== undefined && spare.sha256 === sha256) {
    const p = spare.prepared;
    spare = undefined;
    return p;
  }
  return prepareInstance(policy.module);
}

function failure(kind: 'host-error', detail: string): Outcome {
  return { decision: 'deny', reason: kind, errorKind: kind, errorDetail: detail, fuelUsed: 0, durationUs: 0, capabilityCalls: [], logs: [] };
}

function evaluateJob(job: Extract<ToWorker, { type: 'evaluate' }>): Outcome {
  const policy = policies.get(job.sha256);
  if (policy === undefined) return failure('host-error', `policy ${job.sha256} is not loaded in the worker`);
  try {
    return evaluatePrepared(takeInstance(job.sha256, policy), job.request, createCapabilities(job.capabilities), policy.limits);
  } catch (err) {
    // evaluateInstance does not throw; createCapabilities can (e.g. Linux capabilities unavailable).
    return failure('host-error', err instanceof Error ? err.message : String(err));
  }
}

function handle(message: ToWorker): void {
  switch (message.type) {
    case 'load': {
      const prepareAhead = WebAssembly.Module.exports(message.module).some((e) => e.name === FUEL_GLOBAL);
      policies.set(message.sha256, { module: message.module, limits: message.limits, prepareAhead });
      if (spare?.sha256 === message.sha256) spare = undefined;
      return;
    }
    case 'unload':
      policies.delete(message.sha256);
      if (spare?.sha256 === message.sha256) spare = undefined;
      return;
    case 'evaluate': {
      const answer: FromWorker = { id: message.id, outcome: evaluateJob(message) };
      init.results.postMessage(answer);
      Atomics.add(control, CONTROL.answers, 1);
      Atomics.notify(control, CONTROL.answers);
      const policy = policies.get(message.sha256);
      if (policy?.prepareAhead === true && spare?.sha256 !== message.sha256) spare = { sha256: message.sha256, prepared: prepareInstance(policy.module) };
      return;
    }
  }
}

if (init.linuxCapabilities) await loadLinuxCapabilities();
Atomics.store(control, CONTROL.ready, 1);
Atomics.notify(control, CONTROL.ready);

// Blocks this thread between jobs; terminate() from the main side still ends it.
let seen = 0;
for (;;) {
  Atomics.wait(control, CONTROL.jobs, seen);
  seen = Atomics.load(control, CONTROL.jobs);
  for (let m = receiveMessageOnPort(init.jobs); m !== undefined; m = receiveMessageOnPort(init.jobs)) {
    handle(m.message as ToWorker);
  }
}
