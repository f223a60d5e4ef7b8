// What crosses between the daemon and the verifier's worker (verify-worker-main.ts).
import type { EngineLimits } from '../limits.ts';
import type { VerifiedCore } from './verify-core.ts';

export interface VerifyJob {
  core: Uint8Array;
  limits: EngineLimits;
}

/**
 * Where a check failed: the verifier (`verify`: not metered, or not what the instrumenter
 * makes), V8's compile (`compile`), the timed trial instantiation (`trial`: the policy itself is
 * refused), or the worker (`worker`: it ran past its time or heap, or died).
 */
export type VerifyStage = 'verify' | 'compile' | 'trial' | 'worker';

/**
 * `module`: the core compiled in the worker (a Module crosses threads without a copy of its
 * code); `trialUs`: the fastest of its trial instantiations there, in microseconds.
 */
export type VerifyOutcome =
  | { ok: true; verified: VerifiedCore; module: WebAssembly.Module; trialUs: number }
  | { ok: false; stage: VerifyStage; message: string };
