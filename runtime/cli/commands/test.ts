// `capgate test <policy.wasm> <scenario.yaml>`: the guest simulator, with --run, -q, --watch,
// --reporter, --compare; and `--from-audit <file>` (replay, optionally --write-scenario).
// This file defines the command; test-run.ts runs it.
import type { Command } from 'commander';
import { Option } from 'commander';
import { DEFAULT_LIMITS } from '../../engine/limits.ts';
import { usageError } from '../cli-error.ts';
import { examples, positiveIntArg, withJson } from '../options.ts';
import { REPORTERS } from '../testing/reporters.ts';
import type { TestOptions } from './test-options.ts';

export function registerTest(program: Command): void {
  const cmd = program
    .command('test')
    .description(
      'run a policy against a scenario file (simulated VMs and processes) as the daemon would decide, or replay audit records against it',
    )
    .argument('<policy.wasm>', 'policy component to test')
    .argument('[scenario.yaml]', 'scenario: VMs, processes, and cases with expected decisions')
    .option('--run <pattern>', 'only the cases whose name matches this regular expression')
    .option('-q, --quiet', 'print only failing cases and the summary', false)
    .addOption(
      new Option('--reporter <format>', 'output format: text, junit (JUnit XML) or tap (TAP 14)')
        .choices(REPORTERS)
        .default('text'),
    )
    .option(
      '--watch',
      'rerun on every change of the policy, the scenario or a source file (sources: `npm run build` first); Ctrl-C stops',
      false,
    )
    .option(
      '--compare <other.wasm>',
      'decide every case with both builds and list the differences (expectations are not checked)',
    )
    .option(
      '--from-audit <file>',
      'replay audit records (`capgate audit ls --json`) and report every decision that would change',
    )
    .option(
      '--write-scenario <out.yaml>',
      'with --from-audit: write the changed decisions as scenario cases expecting the new decisions',
    )
    .option(
      '--fuel <n>',
      `instruction budget per evaluation (default: the daemon's, ${DEFAULT_LIMITS.fuel})`,
      positiveIntArg('--fuel'),
    )
    .option(
      '--deadline-ms <ms>',
      `deadline per evaluation, in ms of CPU time, capped at 10x in wall time (default: the daemon's, ${DEFAULT_LIMITS.deadlineMs} ms)`,
      positiveIntArg('--deadline-ms'),
    );
  withJson(cmd);
  examples(cmd, [
    'capgate test build/policy.wasm scenario.yaml',
    'capgate test build/policy.wasm scenario.yaml --run "over the cap" -q',
    'capgate test build/policy.wasm scenario.yaml --watch',
    'capgate test build/policy.wasm scenario.yaml --reporter junit > report.xml',
    'capgate test build/policy.wasm scenario.yaml --compare ../rust-port/build/policy.wasm',
    'capgate audit ls --json --all --since 1d > audit.json && capgate test new.wasm --from-audit audit.json --write-scenario changed.yaml',
  ]);
  cmd.addHelpText(
    'after',
    '\nExit status: 0 when every case passes (no replayed decision changes, no build differs), 1 otherwise, 2 for a malformed scenario or bad arguments.\n',
  );
  cmd.action(async (policyFile: string, scenarioFile: string | undefined, opts: TestOptions) => {
    checkCombination(scenarioFile, opts);
    // The simulator, the engine and YAML load only when a test runs (program.ts).
    const { runTest } = await import('./test-run.ts');
    await runTest(policyFile, scenarioFile, opts);
  });
}

function checkCombination(scenarioFile: string | undefined, o: TestOptions): void {
  if (scenarioFile === undefined && o.fromAudit === undefined) {
    throw usageError(
      'nothing to test: give a scenario file or --from-audit <file>',
      'capgate test policy.wasm scenario.yaml',
    );
  }
  if (scenarioFile !== undefined && o.fromAudit !== undefined)
    throw usageError('give either a scenario file or --from-audit, not both');
  if (o.writeScenario !== undefined && o.fromAudit === undefined)
    throw usageError(
      '--write-scenario needs --from-audit <file>',
      'capgate test new.wasm --from-audit audit.json --write-scenario changed.yaml',
    );
  if (o.fromAudit !== undefined && (o.compare !== undefined || o.watch || o.run !== undefined))
    throw usageError('--compare, --watch and --run apply to a scenario file, not to --from-audit');
  if (o.compare !== undefined && o.watch)
    throw usageError('--compare and --watch do not combine; compare once, or watch one build');
  if (o.json && o.reporter !== 'text')
    throw usageError(`--json and --reporter ${o.reporter} are two output formats; pick one`);
  if (o.watch && o.json) throw usageError('--watch prints for people; leave out --json');
}
