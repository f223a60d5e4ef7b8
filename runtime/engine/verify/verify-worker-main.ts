// The verifier's worker: verifies one core module (verify-core.ts) and says how it went. Off the
// daemon's main thread, because decoding a few MB of code takes tens of milliseconds; the daemon
// bounds it in time and heap (verify-off-thread.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { NotMetered, verifyInstrumentedCore } from './verify-core.ts';
import type { VerifyJob, VerifyOutcome } from './verify-protocol.ts';

const job = workerData as VerifyJob;
let outcome: VerifyOutcome;
try {
  outcome = { ok: true, verified: verifyInstrumentedCore(job.core, job.limits) };
} catch (err) {
  const message =
    err instanceof NotMetered
      ? err.message
      : `the verifier failed: ${err instanceof Error ? err.message : String(err)}`;
  outcome = { ok: false, message: message.slice(0, 1000) };
}
parentPort?.postMessage(outcome);
