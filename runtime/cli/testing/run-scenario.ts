// One `capgate test <policy> <scenario>` run: compile, decide every (selected) case as the daemon
// would, and report in the chosen form. Used once, or once per change with --watch.
import { formatCase, scenarioResultToJson, summaryLine } from '../../simulator/report.ts';
import { formatJunit } from '../../simulator/reporters/junit.ts';
import { formatTap } from '../../simulator/reporters/tap.ts';
import { runScenario } from '../../simulator/runner.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { EXIT } from '../exit-codes.ts';
import { compileLocal } from '../local-simulator.ts';
import type { Output } from '../output/output.ts';
import type { Reporter } from './reporters.ts';
import { readScenarioFile, selectCases } from './scenario-file.ts';

export { REPORTERS, type Reporter } from './reporters.ts';

export interface ScenarioRunOptions {
  reporter: Reporter;
  quiet: boolean;
  run?: RegExp;
  deadlineMs?: number;
}

export async function runScenarioFile(
  out: Output,
  simulator: Simulator,
  policyFile: string,
  scenarioFile: string,
  o: ScenarioRunOptions,
): Promise<number> {
  const { scenario, skipped } = selectCases(await readScenarioFile(scenarioFile), o.run);
  out.progress(`compiling ${policyFile}`);
  const policy = await compileLocal(simulator, policyFile);
  try {
    const streamText = !out.json && o.reporter === 'text';
    const result = await runScenario(simulator, policy.sha256, scenario, {
      ...(o.deadlineMs !== undefined ? { deadlineMs: o.deadlineMs } : {}),
      // People see each case as it is decided; -q keeps only the failures.
      onCase: streamText
        ? (r) =>
            !o.quiet || !r.passed
              ? process.stdout.write(`${formatCase(r, scenarioFile, out.colours).join('\n')}\n`)
              : undefined
        : undefined,
    });
    const summary = `${summaryLine(result.passed, result.failed)}${skipped > 0 ? `, ${skipped} skipped` : ''}`;
    if (out.json) out.result({ ...scenarioResultToJson(result), skipped }, () => '');
    else if (o.reporter === 'junit') out.result(null, () => formatJunit(result, scenarioFile));
    else if (o.reporter === 'tap') out.result(null, () => formatTap(result));
    else out.result(null, () => summary);
    return result.failed === 0 ? EXIT.ok : EXIT.failed;
  } finally {
    simulator.unload(policy.sha256);
  }
}
