// Health of the daemon, as both sockets report it.
import type { Binding, SignatureProblem } from './policies.ts';

/**
 * Something that keeps the daemon from doing all it was asked to: a binding suspended because its
 * revision may not run, or a policy directory whose latest contents were refused.
 */
export type HealthProblem =
  | { kind: 'binding-suspended'; operation: string; policy: string; revision: number; reason: SignatureProblem; message: string }
  | { kind: 'policy-directory'; directory: string; message: string; /** ISO 8601. */ since: string };

/** One line for a HealthProblem, as the top-level `problems` lists it. */
export function describeHealthProblem(p: HealthProblem): string {
  return p.kind === 'binding-suspended'
    ? `${p.operation} is suspended: ${p.policy} revision ${p.revision} may not run (${p.reason}): ${p.message}`
    : `the policy directory ${p.directory} was refused (since ${p.since}), the last good policies stay in force: ${p.message}`;
}

export interface HealthResponse {
  /** `degraded`: serving, but part of it cannot do what it was asked to; `problems` says what and why (the admin socket's detail.problems, in full). */
  status: 'ok' | 'degraded' | 'shutting-down';
  /** Present when degraded: each problem and what to do about it. */
  problems?: string[];
  version: string;
  /** Seconds since the daemon started. */
  uptimeS: number;
  /** Admin socket only. */
  detail?: {
    policiesLoaded: number;
    vmsRegistered: number;
    bindings: Binding[];
    queueDepth: number;
    inFlight: number;
    problems: HealthProblem[];
    /** Present when policies.directory is set. */
    policyDirectory?: PolicyDirectoryStatus;
  };
}

/** The policy directory as the daemon last read it. */
export interface PolicyDirectoryStatus {
  directory: string;
  /** The data directory the last applied contents came from (the target of `..data`, or the directory itself). */
  appliedFrom: string | null;
  /** ISO 8601 of the last successful reconcile. */
  appliedAt: string | null;
  /** sha256 of the applied bindings.yaml. */
  bindingsSha256: string | null;
  /** The last refusal, while it stands (cleared by the next good update). */
  error: { message: string; since: string } | null;
}
