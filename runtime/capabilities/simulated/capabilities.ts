// Capabilities over a SimulatedWorld, with the same scope rules as the real ones:
// only pids inside the requester's VM can be read or changed.
import { MEMLOCK_UNLIMITED, type VmIdentity } from '../../contract/types.ts';
import type { Capabilities, SetMemlockResult } from '../capabilities.ts';
import { DEFAULT_SIMULATED_LIMIT, type SimulatedLimit, type SimulatedWorld } from './world.ts';

const U32_MAX = 0xffff_ffff;

export function createSimulatedCapabilities(world: SimulatedWorld): Capabilities {
  const limits = new Map<number, SimulatedLimit>();
  for (const vm of world.vms) for (const pid of vm.pids) limits.set(pid, { ...DEFAULT_SIMULATED_LIMIT });
  for (const p of world.processes) limits.set(p.pid, { ...p.memlock });
  const scope = world.vms.find((vm) => vm.pids.includes(world.requesterPid));
  const inScope = (pid: number): boolean => scope?.pids.includes(pid) === true;

  return {
    setMemlock(pid: number, bytes: bigint): SetMemlockResult {
      if (!Number.isInteger(pid) || pid <= 0 || pid > U32_MAX) return { ok: false, error: 'invalid-argument' };
      if (bytes < 0n || bytes > MEMLOCK_UNLIMITED) return { ok: false, error: 'invalid-argument' };
      const limit = limits.get(pid);
      if (limit === undefined) return { ok: false, error: 'no-such-process' };
      if (!inScope(pid)) return { ok: false, error: 'out-of-scope' };
      if (bytes > limit.hard && !world.canRaiseHardLimit) {
        return { ok: false, error: 'not-permitted', detail: 'EPERM: raising the hard limit needs CAP_SYS_RESOURCE' };
      }
      limit.soft = bytes;
      limit.hard = bytes;
      return { ok: true };
    },
    queryVmIdentity(pid: number): VmIdentity | null {
      if (!inScope(pid) || scope === undefined) return null;
      return scope.identity;
    },
  };
}
