// The verifier's worker: verifies one core module (verify-core.ts), compiles it, and times a trial
// instantiation of it (instantiation-cost.ts), then says how it went. Off the daemon's main
// thread: decoding a few MB of code takes tens of milliseconds, and instantiation is not
// metered; the daemon bounds the worker in time and heap (verify-off-thread.ts). The trial's time
// is the daemon's own measure, not the word of the compile process (which may be running an
// attacker's code). No guest code runs in it: the verifier has checked that there is no start
// section, and the host functions trap outside an evaluation.
import { parentPort, workerData } from 'node:worker_threads';
import { PolicyRejection } from '../component/rejection.ts';
import { trialInstantiation } from '../instantiation-cost.ts';
import { NotMetered, verifyInstrumentedCore } from './verify-core.ts';
import type { VerifyJob, VerifyOutcome, VerifyStage } from './verify-protocol.ts';

const MAX_MESSAGE_CHARS = 1000;
const text = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const refused = (stage: VerifyStage, message: string): VerifyOutcome => ({
  ok: false,
  stage,
  message: message.slice(0, MAX_MESSAGE_CHARS),
});

function check(job: VerifyJob): VerifyOutcome {
  let verified: ReturnType<typeof verifyInstrumentedCore>;
  try {
    verified = verifyInstrumentedCore(job.core, job.limits);
  } catch (err) {
    return refused('verify', err instanceof NotMetered ? err.message : `the verifier failed: ${text(err)}`);
  }
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(job.core);
  } catch (err) {
    return refused('compile', `the compiled policy does not compile here (engine bug): ${text(err)}`);
  }
  try {
    return { ok: true, verified, module, trialUs: trialInstantiation(module, job.limits.maxInstantiateMs) };
  } catch (err) {
    return refused(
      'trial',
      err instanceof PolicyRejection ? err.message : `the trial instantiation failed: ${text(err)}`,
    );
  }
}

parentPort?.postMessage(check(workerData as VerifyJob));
