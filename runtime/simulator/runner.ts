// Runs a scenario's cases against one compiled policy, through the same Engine the daemon uses,
// with simulated capabilities instead of Linux ones, behind the daemon's own gate (a requester
// in no VM, nothing bound: denied before any policy runs).
import type { PolicyEngine } from '../engine/api.ts';
import type { Decided } from '../server/request/daemon-deny.ts';
import { checkOutcome, type Mismatch } from './check.ts';
import { daemonGate } from './daemon-gate.ts';
import type { Scenario, ScenarioCase } from './scenario/types.ts';
import { buildWorld, caseHost, caseWorld } from './world.ts';

export interface CaseResult {
  case: ScenarioCase;
  outcome: Decided;
  mismatches: Mismatch[];
  passed: boolean;
}

export interface ScenarioResult {
  cases: CaseResult[];
  passed: number;
  failed: number;
}

export interface RunOptions {
  /** Per-evaluation wall-clock deadline; default the engine's limit (the daemon's 100 ms). */
  deadlineMs?: number;
  /** Called after each case, for progress output. */
  onCase?: (result: CaseResult, index: number) => void;
}

/** One case as the daemon would answer it: its gate first, then the policy. */
export async function decideCase(
  engine: PolicyEngine,
  sha256: string,
  scenario: Scenario,
  c: ScenarioCase,
  options: RunOptions = {},
): Promise<Decided> {
  const world = buildWorld(scenario, c);
  const gate = daemonGate({
    world,
    operation: c.request.operation,
    policyBound: caseHost(scenario, c).policyBound,
    absentPids: caseWorld(scenario, c).absentPids,
  });
  if (gate !== null) return gate;
  return engine.evaluate(
    sha256,
    { ...c.request },
    { kind: 'simulated', world },
    options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs },
  );
}

export async function runScenario(
  engine: PolicyEngine,
  sha256: string,
  scenario: Scenario,
  options: RunOptions = {},
): Promise<ScenarioResult> {
  const cases: CaseResult[] = [];
  for (const [i, c] of scenario.cases.entries()) {
    const outcome = await decideCase(engine, sha256, scenario, c, options);
    const mismatches = checkOutcome(c.expect, outcome);
    const result: CaseResult = { case: c, outcome, mismatches, passed: mismatches.length === 0 };
    cases.push(result);
    options.onCase?.(result, i);
  }
  const passed = cases.filter((c) => c.passed).length;
  return { cases, passed, failed: cases.length - passed };
}
