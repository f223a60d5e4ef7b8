// Builds the simulated host one case runs against. Every case gets a fresh world built from
// the scenario (or from the case's own world), so a set-memlock in one case is never seen by
// the next (policies are stateless, and so are the cases).
import type { SimulatedWorld } from '../capabilities/simulated/world.ts';
import type { Scenario, ScenarioCase, ScenarioHost, ScenarioWorld } from './scenario/types.ts';

/** The processes of a case: its own world if it has one, else the scenario's. */
export function caseWorld(scenario: Scenario, c: ScenarioCase): ScenarioWorld {
  return c.world ?? scenario;
}

export function caseHost(scenario: Scenario, c: ScenarioCase): ScenarioHost {
  return { ...scenario.host, ...c.host };
}

export function buildWorld(scenario: Scenario, c: ScenarioCase): SimulatedWorld {
  const w = caseWorld(scenario, c);
  return {
    requesterPid: c.request.requesterPid,
    vms: w.vms.map((vm) => ({
      identity: { ...vm.identity, labels: vm.identity.labels.map(([k, v]) => [k, v] as [string, string]) },
      pids: [...vm.pids],
    })),
    // Absent pids are simply not there: the simulated kernel answers no-such-process.
    processes: w.processes.map((p) => ({ pid: p.pid, memlock: { ...p.memlock } })),
    canRaiseHardLimit: caseHost(scenario, c).canRaiseHardLimit,
  };
}
