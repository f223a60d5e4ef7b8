// `capgate test <policy.wasm> <scenario.yaml>`: the guest simulator, with --run, -q, --watch,
// --reporter, --compare; and `--from-audit <file>` (replay, optionally --write-scenario).
import type { Command } from 'commander';
import { Option } from 'commander';
import { DEFAULT_LIMITS } from '../../engine/limits.ts';
import { compareBuilds, compareResultToJson, compareSummary, formatCompared } from '../../simulator/compare.ts';
import { readAuditRecords } from '../../simulator/replay/read-audit.ts';
import { replayAudit } from '../../simulator/replay/replay.ts';
import { formatReplayResult, replayResultToJson } from '../../simulator/replay/report.ts';
import { scenarioFromReplay } from '../../simulator/replay/to-scenario.ts';
import { usageError } from '../cli-error.ts';
import { EXIT } from '../exit-codes.ts';
import { compileLocal, openLocalEngine } from '../local-engine.ts';
import { examples, positiveIntArg, withJson } from '../options.ts';
import { createOutput, type Output } from '../output/output.ts';
import { REPORTERS, runScenarioFile, type Reporter, type ScenarioRunOptions } from '../testing/run-scenario.ts';
import { caseFilter, readScenarioFile, readText, selectCases } from '../testing/scenario-file.ts';
import { watchAndRerun } from '../testing/watch.ts';

interface TestOptions {
  json: boolean;
  fromAudit?: string;
  writeScenario?: string;
  compare?: string;
  run?: string;
  quiet: boolean;
  watch: boolean;
  reporter: Reporter;
  fuel?: number;
  deadlineMs?: number;
}

export function registerTest(program: Command): void {
  const cmd = program
    .command('test')
    .description('run a policy against a scenario file (simulated VMs and processes) as the daemon would decide, or replay audit records against it')
    .argument('<policy.wasm>', 'policy component to test')
    .argument('[scenario.yaml]', 'scenario: VMs, processes, and cases with expected decisions')
    .option('--run <pattern>', 'only the cases whose name matches this regular expression')
    .option('-q, --quiet', 'print only failing cases and the summary', false)
    .addOption(new Option('--reporter <format>', 'output format: text, junit (JUnit XML) or tap (TAP 14)').choices(REPORTERS).default('text'))
    .option('--watch', 'rerun on every change of the policy, the scenario or a source file (sources: `npm run build` first); Ctrl-C stops', false)
    .option('--compare <other.wasm>', 'decide every case with both builds and list the differences (expectations are not checked)')
    .option('--from-audit <file>', 'replay audit records (`capgate audit ls --json`) and report every decision that would change')
    .option('--write-scenario <out.yaml>', 'with --from-audit: write the changed decisions as scenario cases expecting the new decisions')
    .option('--fuel <n>', `instruction budget per evaluation (default: the daemon's, ${DEFAULT_LIMITS.fuel})`, positiveIntArg('--fuel'))
    .option('--deadline-ms <ms>', `wall-clock deadline per evaluation (default: the daemon's, ${DEFAULT_LIMITS.deadlineMs} ms)`, positiveIntArg('--deadline-ms'));
  withJson(cmd);
  examples(cmd, [
    'capgate test build/policy.wasm scenario.yaml',
    'capgate test build/policy.wasm scenario.yaml --run "over the cap" -q',
    'capgate test build/policy.wasm scenario.yaml --watch',
    'capgate test build/policy.wasm scenario.yaml --reporter junit > report.xml',
    'capgate test build/policy.wasm scenario.yaml --compare ../rust-port/build/policy.wasm',
    'capgate audit ls --json --all --since 1d > audit.json && capgate test new.wasm --from-audit audit.json --write-scenario changed.yaml',
  ]);
  cmd.addHelpText('after', '\nExit status: 0 when every case passes (no replayed decision changes, no build differs), 1 otherwise, 2 for a malformed scenario or bad arguments.\n');
  cmd.action(async (policyFile: string, scenarioFile: string | undefined, opts: TestOptions) => {
    checkCombination(scenarioFile, opts);
    const out = createOutput(opts.json);
    const engine = await openLocalEngine(opts.fuel === undefined ? {} : { fuel: opts.fuel });
    try {
      if (opts.fromAudit !== undefined) process.exitCode = await testReplay(out, engine, policyFile, opts.fromAudit, opts);
      else if (opts.compare !== undefined) process.exitCode = await testCompare(out, engine, policyFile, opts.compare, scenarioFile!, opts);
      else {
        const run: ScenarioRunOptions = {
          reporter: opts.reporter,
          quiet: opts.quiet,
          ...(opts.run !== undefined ? { run: caseFilter(opts.run) } : {}),
          ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}),
        };
        const once = (): Promise<number> => runScenarioFile(out, engine, policyFile, scenarioFile!, run);
        process.exitCode = opts.watch ? await watchAndRerun(out, { policyFile, scenarioFile: scenarioFile! }, once) : await once();
      }
    } finally {
      await engine.close();
    }
  });
}

function checkCombination(scenarioFile: string | undefined, o: TestOptions): void {
  if (scenarioFile === undefined && o.fromAudit === undefined) {
    throw usageError('nothing to test: give a scenario file or --from-audit <file>', 'capgate test policy.wasm scenario.yaml');
  }
  if (scenarioFile !== undefined && o.fromAudit !== undefined) throw usageError('give either a scenario file or --from-audit, not both');
  if (o.writeScenario !== undefined && o.fromAudit === undefined) throw usageError('--write-scenario needs --from-audit <file>', 'capgate test new.wasm --from-audit audit.json --write-scenario changed.yaml');
  if (o.fromAudit !== undefined && (o.compare !== undefined || o.watch || o.run !== undefined)) throw usageError('--compare, --watch and --run apply to a scenario file, not to --from-audit');
  if (o.compare !== undefined && o.watch) throw usageError('--compare and --watch do not combine; compare once, or watch one build');
  if (o.json && o.reporter !== 'text') throw usageError(`--json and --reporter ${o.reporter} are two output formats; pick one`);
  if (o.watch && o.json) throw usageError('--watch prints for people; leave out --json');
}

async function testCompare(out: Output, engine: Awaited<ReturnType<typeof openLocalEngine>>, policyFile: string, otherFile: string, scenarioFile: string, opts: TestOptions): Promise<number> {
  const { scenario, skipped } = selectCases(await readScenarioFile(scenarioFile), opts.run === undefined ? undefined : caseFilter(opts.run));
  out.progress(`compiling ${policyFile} and ${otherFile}`);
  const a = await compileLocal(engine, policyFile);
  const b = await compileLocal(engine, otherFile);
  const names = { a: policyFile, b: otherFile, file: scenarioFile };
  const result = await compareBuilds(engine, a.sha256, b.sha256, scenario, {
    ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}),
    onCompared: out.json ? undefined : (c) => (!opts.quiet || c.differences.length > 0 ? process.stdout.write(`${formatCompared(c, names, out.colours).join('\n')}\n`) : undefined),
  });
  out.result({ ...compareResultToJson(result), skipped }, () => `${compareSummary(result)}${skipped > 0 ? `, ${skipped} skipped` : ''}`);
  return result.different === 0 ? EXIT.ok : EXIT.failed;
}

async function testReplay(out: Output, engine: Awaited<ReturnType<typeof openLocalEngine>>, policyFile: string, auditFile: string, opts: TestOptions): Promise<number> {
  const read = readAuditRecords(await readText(auditFile, 'audit file'));
  if (!read.ok) throw usageError(`${auditFile}: ${read.message}`);
  out.progress(`compiling ${policyFile}`);
  const policy = await compileLocal(engine, policyFile);
  out.progress(`replaying ${read.records.length} decisions`);
  const result = await replayAudit(engine, policy.sha256, read.records, opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {});
  let written: string | null = null;
  if (opts.writeScenario !== undefined) {
    const text = scenarioFromReplay(result, auditFile);
    if (text !== null) {
      const { writeFile } = await import('node:fs/promises');
      try {
        await writeFile(opts.writeScenario, text);
      } catch (e) {
        throw usageError(`cannot write ${opts.writeScenario}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      written = opts.writeScenario;
    }
  }
  const note = opts.writeScenario === undefined ? '' : written ? `\nwrote ${result.changed} case(s) to ${written}: capgate test ${policyFile} ${written}` : `\nno decision changed: ${opts.writeScenario} not written`;
  out.result({ ...replayResultToJson(result), ...(opts.writeScenario !== undefined ? { scenarioWritten: written } : {}) }, () => `${formatReplayResult(result, out.colours)}${note}`);
  return result.changed === 0 ? EXIT.ok : EXIT.failed;
}
