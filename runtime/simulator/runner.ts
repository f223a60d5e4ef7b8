// Runs a scenario's cases against one compiled policy, each decided by the Simulator as the
// daemon would decide it (simulator.ts: the daemon's engine, gate and evaluation path).
import { checkOutcome, type Mismatch } from './check.ts';
import type { Scenario, ScenarioCase } from './scenario/types.ts';
import type { DecideOptions, SimulatedDecision, Simulator } from './simulator.ts';
import { buildWorld, caseHost, caseWorld } from './world.ts';

export interface CaseResult {
  case: ScenarioCase;
  outcome: SimulatedDecision;
  mismatches: Mismatch[];
  passed: boolean;
}

export interface ScenarioResult {
  cases: CaseResult[];
  passed: number;
  failed: number;
}

export interface RunOptions extends DecideOptions {
  /** Called after each case, for progress output. */
  onCase?: (result: CaseResult, index: number) => void;
}

/** One case as the daemon would answer it. */
export function decideCase(
  simulator: Simulator,
  sha256: string,
  scenario: Scenario,
  c: ScenarioCase,
  options: DecideOptions = {},
): Promise<SimulatedDecision> {
  return simulator.decide(
    sha256,
    {
      request: c.request,
      world: buildWorld(scenario, c),
      policyBound: caseHost(scenario, c).policyBound,
      absentPids: caseWorld(scenario, c).absentPids,
    },
    options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs },
  );
}

export async function runScenario(
  simulator: Simulator,
  sha256: string,
  scenario: Scenario,
  options: RunOptions = {},
): Promise<ScenarioResult> {
  const cases: CaseResult[] = [];
  for (const [i, c] of scenario.cases.entries()) {
    const outcome = await decideCase(simulator, sha256, scenario, c, options);
    const mismatches = checkOutcome(c.expect, outcome);
    const result: CaseResult = { case: c, outcome, mismatches, passed: mismatches.length === 0 };
    cases.push(result);
    options.onCase?.(result, i);
  }
  const passed = cases.filter((c) => c.passed).length;
  return { cases, passed, failed: cases.length - passed };
}
