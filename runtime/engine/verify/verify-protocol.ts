// What crosses between the daemon and the verifier's worker (verify-worker-main.ts).
import type { EngineLimits } from '../limits.ts';
import type { VerifiedCore } from './verify-core.ts';

export interface VerifyJob {
  core: Uint8Array;
  limits: EngineLimits;
}

export type VerifyOutcome = { ok: true; verified: VerifiedCore } | { ok: false; message: string };
