// Capabilities over a SimulatedWorld, with the same scope rules as the real ones:
// only pids inside the requester's VM can be read or changed. They change a copy of the world's
// limits, never the world given (it may be frozen, and it is the case's, not this run's).
import { MEMLOCK_UNLIMITED, type VmIdentity } from '../../contract/types.ts';
import type { Capabilities, SetMemlockResult } from '../capabilities.ts';
import { DEFAULT_SIMULATED_LIMIT, type SimulatedLimit, type SimulatedWorld } from './world.ts';

const U32_MAX = 0xffff_ffff;

export interface SimulatedCapabilities extends Capabilities {
  /**
   * The world as this run has left it, its set-memlock effects in the limits: where a run that
   * continues this one starts from, as a continued run on the real host finds the kernel's
   * limits changed by the first one (engine.ts, speculative runs).
   */
  worldNow(): SimulatedWorld;
}

export function createSimulatedCapabilities(world: SimulatedWorld): SimulatedCapabilities {
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
    worldNow(): SimulatedWorld {
      return {
        requesterPid: world.requesterPid,
        vms: world.vms.map((vm) => ({
          identity: { ...vm.identity, labels: vm.identity.labels.map(([k, v]) => [k, v]) },
          pids: [...vm.pids],
        })),
        // Every process this run could see, VM members without a listed limit included (at the
        // default they had): same world, one list.
        processes: [...limits].map(([pid, memlock]) => ({ pid, memlock: { ...memlock } })),
        canRaiseHardLimit: world.canRaiseHardLimit,
      };
    },
  };
}
