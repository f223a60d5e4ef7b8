// What the daemon decides before any policy runs, in the simulator: a requester in no
// registered VM is denied unknown-requester, an operation with nothing bound no-policy, in that
// order and with the daemon's own details (server/request/decision-pipeline.ts). The policy
// does not run, so a scenario cannot pass on behaviour production never shows.
import type { Operation } from '../contract/types.ts';
import type { SimulatedWorld } from '../capabilities/simulated/world.ts';
import { denyOutcome } from '../engine/deny-outcome.ts';
import { DAEMON_DENY_DETAIL, type Decided } from '../server/request/daemon-deny.ts';

export interface GateInput {
  world: SimulatedWorld;
  operation: Operation;
  policyBound: boolean;
  /** Pids that name no process: a requester among them has exited. */
  absentPids: readonly number[];
}

/** The daemon's own deny, or null when the policy runs. */
export function daemonGate(input: GateInput): Decided | null {
  const pid = input.world.requesterPid;
  if (input.absentPids.includes(pid)) return denyOutcome('unknown-requester', DAEMON_DENY_DETAIL.exited(pid));
  if (!input.world.vms.some((vm) => vm.pids.includes(pid)))
    return denyOutcome('unknown-requester', DAEMON_DENY_DETAIL.notInVm(pid));
  if (!input.policyBound) return denyOutcome('no-policy', DAEMON_DENY_DETAIL.nothingBound(input.operation));
  return null;
}
