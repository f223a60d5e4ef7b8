// A simulated host: VMs with their member pids, processes with their memlock limits.
// Used by the guest simulator and by tests; plain data so it can cross a worker boundary.
import type { VmIdentity } from '../../contract/types.ts';

export interface SimulatedLimit {
  soft: bigint;
  hard: bigint;
}

export interface SimulatedProcess {
  pid: number;
  memlock: SimulatedLimit;
}

export interface SimulatedVm {
  identity: VmIdentity;
  pids: number[];
}

export interface SimulatedWorld {
  /** The kernel-verified requester; its VM is the scope of every capability. */
  requesterPid: number;
  vms: SimulatedVm[];
  /** Processes that exist. A pid listed in a VM but not here exists with DEFAULT_SIMULATED_LIMIT. */
  processes: SimulatedProcess[];
  /** Whether the simulated daemon holds CAP_SYS_RESOURCE (may raise hard limits). */
  canRaiseHardLimit: boolean;
}

/** Linux's default RLIMIT_MEMLOCK since 5.16: 8 MiB soft and hard. */
export const DEFAULT_SIMULATED_LIMIT: Readonly<SimulatedLimit> = Object.freeze({
  soft: 8n * 1024n * 1024n,
  hard: 8n * 1024n * 1024n,
});
