// Reading a scenario file for `capgate test`, and choosing its cases with --run.
import { readFile } from 'node:fs/promises';
import { parseScenario } from '../../simulator/scenario/parse.ts';
import type { Scenario } from '../../simulator/scenario/types.ts';
import { CliError, usageError } from '../cli-error.ts';
import { EXIT } from '../exit-codes.ts';

export async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw usageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The validated scenario, or a usage error listing every problem as file:line:col. */
export async function readScenarioFile(file: string): Promise<Scenario> {
  const parsed = parseScenario(await readText(file, 'scenario'));
  if (parsed.ok) return parsed.scenario;
  throw new CliError(
    `${file} is not a valid scenario:\n${parsed.issues.map((i) => `  ${file}:${i.line}:${i.col}: ${i.message}`).join('\n')}`,
    EXIT.usage,
    'fix the lines above; `capgate init` writes a complete example scenario',
    { issues: parsed.issues },
  );
}

/** --run <pattern>: a regular expression matched against case names (anywhere, like `go test -run`). */
export function caseFilter(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (e) {
    throw usageError(
      `--run "${pattern}" is not a valid regular expression: ${(e as Error).message}`,
      'pass part of a case name, e.g. --run "over the cap"',
    );
  }
}

/** The scenario with only the cases --run selects, and how many it left out. */
export function selectCases(scenario: Scenario, run: RegExp | undefined): { scenario: Scenario; skipped: number } {
  if (run === undefined) return { scenario, skipped: 0 };
  const cases = scenario.cases.filter((c) => run.test(c.name));
  if (cases.length === 0) {
    throw usageError(
      `--run ${String(run)} matches none of the ${scenario.cases.length} cases`,
      `case names: ${scenario.cases.map((c) => JSON.stringify(c.name)).join(', ')}`,
    );
  }
  return { scenario: { ...scenario, cases }, skipped: scenario.cases.length - cases.length };
}
