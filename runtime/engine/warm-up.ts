// The first run of a policy in a worker pays for that worker's first instantiation (and V8's
// first tier of its code). The daemon and the simulator both pay it here, before any decision
// that has a deadline, so a fresh policy is not timed out for work no later request does.
import type { PolicyEngine } from './api.ts';
import type { Outcome } from './outcome.ts';

/** A warm-up run that has not decided by then says nothing useful (and holds a worker). */
export const WARM_UP_DEADLINE_MS = 1000;

/** `runs` side-effect-free evaluations at once (simulated host, no VMs): one per worker, each
 * sent there directly (a speculative run on this thread would decide it and warm no worker). */
export function warmUp(engine: PolicyEngine, sha256: string, runs: number): Promise<Outcome[]> {
  const request = { operation: 'set-memlock' as const, requesterPid: 1, requesterUid: 0, targetPid: 1, bytes: 0n };
  const world = { requesterPid: 1, vms: [], processes: [], canRaiseHardLimit: false };
  return Promise.all(
    Array.from({ length: runs }, () =>
      engine.evaluate(
        sha256,
        request,
        { kind: 'simulated', world },
        { deadlineMs: WARM_UP_DEADLINE_MS, noInline: true },
      ),
    ),
  );
}
