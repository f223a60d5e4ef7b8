// Runs the verifier (verify-core.ts) in a worker thread of its own, one module per worker, never
// on the daemon's main thread: it reads every instruction of the module (a 4 MB code section
// takes tens of milliseconds). The worker's heap is capped and its time bounded; a verifier that
// runs out of either refuses, as does one that dies. Uploads are rare: a worker per module keeps
// nothing alive between them.
import { startWorker } from '../../bootstrap/worker-thread.ts';
import type { EngineLimits } from '../limits.ts';
import type { VerifyJob, VerifyOutcome } from './verify-protocol.ts';

const ENTRY = new URL('./verify-worker-main.ts', import.meta.url);

export interface VerifyBounds {
  timeoutMs: number;
  maxHeapMb: number;
}

/** A 4 MB code section takes ~100 ms (load ~3); the margin is for a busy machine. */
export const DEFAULT_VERIFY_BOUNDS: Readonly<VerifyBounds> = Object.freeze({ timeoutMs: 10_000, maxHeapMb: 256 });

export function verifyCoreOffThread(
  core: Uint8Array,
  limits: EngineLimits,
  bounds: VerifyBounds = DEFAULT_VERIFY_BOUNDS,
): Promise<VerifyOutcome> {
  return new Promise((resolve) => {
    const job: VerifyJob = { core, limits };
    const worker = startWorker(ENTRY, {
      workerData: job,
      resourceLimits: { maxOldGenerationSizeMb: bounds.maxHeapMb, maxYoungGenerationSizeMb: 16 },
      stdout: true,
      stderr: true,
    });
    let settled = false;
    let problem = '';
    const done = (outcome: VerifyOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
      void worker.terminate();
    };
    const timer = setTimeout(
      () => done({ ok: false, message: `verifying it took longer than ${bounds.timeoutMs} ms` }),
      bounds.timeoutMs,
    );
    worker.once('message', (m: VerifyOutcome) => done(m));
    worker.on('error', (err) => (problem = err.message));
    worker.once('exit', (code) =>
      done({
        ok: false,
        message: `the verifier stopped before it answered (exit code ${code}${problem ? `: ${problem.slice(0, 300)}` : ''}; its heap is capped at ${bounds.maxHeapMb} MiB)`,
      }),
    );
  });
}
