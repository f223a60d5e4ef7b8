// A serialisable description of the capabilities for one evaluation. It crosses the worker
// boundary (structured clone) and is turned into a Capabilities object inside the worker, so
// host calls never bounce back to the main thread.
import type { RegisteredVm } from '../identity/vm.ts';
import type { SimulatedWorld } from './simulated/world.ts';

export type CapabilitySpec =
  /** Real Linux capabilities (prlimit, /proc), scoped to the requester's registered VM. */
  | { kind: 'linux'; scope: RegisteredVm }
  /** The simulator's (and tests') in-memory host. */
  | { kind: 'simulated'; world: SimulatedWorld };
