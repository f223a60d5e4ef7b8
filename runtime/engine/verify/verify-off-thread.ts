// Runs the verifier (verify-core.ts), V8's compile and the timed trial instantiation of a core
// module (verify-worker-main.ts) in a worker thread of its own, one module per worker, never on
// the daemon's main thread: the verifier reads every instruction of the module (a 4 MB code
// section takes tens of milliseconds), and instantiation is not metered. The worker's heap is
// capped and its time bounded; a worker that runs out of either refuses, as does one that dies.
// Uploads are rare: a worker per module keeps nothing alive between them.
import { startWorker } from '../../bootstrap/worker-thread.ts';
import type { EngineLimits } from '../limits.ts';
import type { VerifyJob, VerifyOutcome } from './verify-protocol.ts';

const ENTRY = new URL('./verify-worker-main.ts', import.meta.url);

export interface VerifyBounds {
  timeoutMs: number;
  maxHeapMb: number;
}

/** A 4 MB code section takes ~100 ms to verify (load ~3); the margin is for a busy machine. */
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
      () =>
        done({
          ok: false,
          stage: 'worker',
          message: `verifying and trying it took longer than ${bounds.timeoutMs} ms`,
        }),
      bounds.timeoutMs,
    );
    worker.once('message', (m: VerifyOutcome) => done(m));
    worker.on('error', (err) => (problem = err.message));
    worker.once('exit', (code) =>
      done({
        ok: false,
        stage: 'worker',
        message: `the verifier stopped before it answered (exit code ${code}${problem ? `: ${problem.slice(0, 300)}` : ''}; its heap is capped at ${bounds.maxHeapMb} MiB)`,
      }),
    );
  });
}
