// Everything one evaluation accumulates on the host side: capability calls, log lines, the
// first fault. One per instance; discarded with it.
import type { Capabilities } from '../../capabilities/capabilities.ts';
import type { EngineLimits } from '../limits.ts';
import type { CapabilityCall, LogLine } from '../outcome.ts';
import type { GuestFault } from './guest-fault.ts';
import type { GuestMemory } from './guest-memory.ts';
import type { GuestRealloc } from './lower-results.ts';

export class EvaluationState {
  readonly capabilities: Capabilities;
  readonly limits: EngineLimits;
  readonly capabilityCalls: CapabilityCall[] = [];
  readonly logs: LogLine[] = [];
  droppedLogLines = 0;
  /** Capability calls attempted, refused ones included. */
  capabilityCallCount = 0;
  quotaExceeded = false;
  /** The first host-side fault; it decides the outcome even if the guest caught the throw. */
  fault: GuestFault | undefined;
  /** Set once the instance exists; host calls from a start function find them unset. */
  memory: GuestMemory | undefined;
  realloc: GuestRealloc | undefined;

  constructor(capabilities: Capabilities, limits: EngineLimits) {
    this.capabilities = capabilities;
    this.limits = limits;
  }

  /** Records the fault (first one wins) and returns it, for the caller to throw. */
  fail(fault: GuestFault): GuestFault {
    this.fault ??= fault;
    return fault;
  }
}
