// A serialisable description of the capabilities for one evaluation. It crosses the worker
// boundary (structured clone) and is turned into a Capabilities object inside the worker, so
// host calls never bounce back to the main thread.
import type { RegisteredVm } from '../identity/vm.ts';
import type { SimulatedWorld } from './simulated/world.ts';

export type CapabilitySpec =
  /**
   * Real Linux capabilities (prlimit, /proc), scoped to the requester's registered VM.
   * `recentMembersMs`: how long a target found inside the VM may be taken as inside it again
   * (capabilities/linux/recent-members.ts); absent or 0: checked on every evaluation.
   * `pinned`: the target the daemon translated from the requester's pid namespace, by pid and
   * start time; the capabilities act on that pid only while that process holds it.
   */
  | { kind: 'linux'; scope: RegisteredVm; recentMembersMs?: number; pinned?: { pid: number; startTime: number } }
  /** The simulator's (and tests') in-memory host. */
  | { kind: 'simulated'; world: SimulatedWorld };
