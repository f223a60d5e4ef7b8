// The one way to build a deny that no policy decided: the engine's own failures (closed, no such
// policy, a worker that died or timed out) and, with the daemon's kinds, the denies the daemon
// decides before any policy runs. Nothing ran, so nothing was spent, called or logged.
import type { CapabilityCall, ErrorKind, Outcome } from './outcome.ts';

/** An Outcome whose errorKind may be wider than the engine's (the daemon adds its own kinds). */
export type DenyOutcome<K extends string> = Omit<Outcome, 'errorKind'> & { errorKind: K };

/** `capabilityCalls`: what a stopped worker's ledger says its job did before it was stopped. */
export function denyOutcome<K extends string = ErrorKind>(
  kind: K,
  detail: string,
  durationUs = 0,
  capabilityCalls: CapabilityCall[] = [],
): DenyOutcome<K> {
  return {
    decision: 'deny',
    reason: kind,
    errorKind: kind,
    errorDetail: detail,
    fuelUsed: 0,
    durationUs,
    capabilityCalls,
    logs: [],
  };
}
