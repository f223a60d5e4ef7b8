// Builds the simulated host one case runs against. Every case gets a fresh world built from
// the scenario, so a set-memlock in one case is never seen by the next (policies are stateless,
// and so are the cases).
import type { SimulatedWorld } from '../capabilities/simulated/world.ts';
import type { Scenario, ScenarioCase } from './scenario/types.ts';

export function buildWorld(scenario: Scenario, c: ScenarioCase): SimulatedWorld {
  return {
    requesterPid: c.request.requesterPid,
    vms: scenario.vms.map((vm) => ({
      identity: { ...vm.identity, labels: vm.identity.labels.map(([k, v]) => [k, v] as [string, string]) },
      pids: [...vm.pids],
    })),
    processes: scenario.processes.map((p) => ({ pid: p.pid, memlock: { ...p.memlock } })),
    canRaiseHardLimit: c.host?.canRaiseHardLimit ?? scenario.host.canRaiseHardLimit,
  };
}
