// The real Linux Capabilities for one evaluation, scoped to the requester's registered VM.
// Created inside the engine's worker per evaluation (from CapabilitySpec { kind: 'linux' }).
import type { RegisteredVm } from '../../identity/vm.ts';
import type { Capabilities, SetMemlockResult } from '../capabilities.ts';
import { queryVmIdentityInScope } from './query-vm-identity.ts';
import { withCallQuota } from './quota.ts';
import { setMemlockInScope } from './set-memlock.ts';

export interface LinuxCapabilitiesOptions {
  /** Capability calls allowed in this evaluation; unlimited when absent (the engine may count). */
  maxCalls?: number;
}

export function createLinuxCapabilities(scope: RegisteredVm, options: LinuxCapabilitiesOptions = {}): Capabilities {
  const capabilities: Capabilities = {
    // Host imports answer with typed values, never exceptions: anything unexpected (FFI missing,
    // fd exhaustion) is `internal` / none — fail closed, and the audit gets the detail.
    setMemlock(pid, bytes): SetMemlockResult {
      try {
        return setMemlockInScope(scope, pid, bytes);
      } catch (e) {
        return { ok: false, error: 'internal', detail: `set-memlock failed unexpectedly: ${e instanceof Error ? e.message : String(e)}` };
      }
    },
    queryVmIdentity(pid) {
      try {
        return queryVmIdentityInScope(scope, pid);
      } catch {
        return null;
      }
    },
  };
  return options.maxCalls === undefined ? capabilities : withCallQuota(capabilities, options.maxCalls);
}
