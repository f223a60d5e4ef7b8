// Runs a scenario's cases against one compiled policy, through the same Engine the daemon uses,
// with simulated capabilities instead of Linux ones.
import type { PolicyEngine } from '../engine/api.ts';
import type { Outcome } from '../engine/outcome.ts';
import { checkOutcome, type Mismatch } from './check.ts';
import type { Scenario, ScenarioCase } from './scenario/types.ts';
import { buildWorld } from './world.ts';

export interface CaseResult {
  case: ScenarioCase;
  outcome: Outcome;
  mismatches: Mismatch[];
  passed: boolean;
}

export interface ScenarioResult {
  cases: CaseResult[];
  passed: number;
  failed: number;
}

export interface RunOptions {
  /** Per-evaluation wall-clock deadline; generous by default since CI machines are slow. */
  deadlineMs?: number;
  /** Called after each case, for progress output. */
  onCase?: (result: CaseResult, index: number) => void;
}

export async function runScenario(engine: PolicyEngine, sha256: string, scenario: Scenario, options: RunOptions = {}): Promise<ScenarioResult> {
  const cases: CaseResult[] = [];
  for (const [i, c] of scenario.cases.entries()) {
    const outcome = await engine.evaluate(
      sha256,
      { ...c.request },
      { kind: 'simulated', world: buildWorld(scenario, c) },
      options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs },
    );
    const mismatches = checkOutcome(c.expect, outcome);
    const result: CaseResult = { case: c, outcome, mismatches, passed: mismatches.length === 0 };
    cases.push(result);
    options.onCase?.(result, i);
  }
  const passed = cases.filter((c) => c.passed).length;
  return { cases, passed, failed: cases.length - passed };
}
