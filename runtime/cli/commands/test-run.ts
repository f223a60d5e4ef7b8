// Runs `capgate test` (test.ts defines its options): scenario files, --compare and --from-audit.
import { compareBuilds, compareResultToJson, compareSummary, formatCompared } from '../../simulator/compare.ts';
import { readAuditRecords } from '../../simulator/replay/read-audit.ts';
import { replayAudit } from '../../simulator/replay/replay.ts';
import { formatReplayResult, replayResultToJson } from '../../simulator/replay/report.ts';
import { scenarioFromReplay } from '../../simulator/replay/to-scenario.ts';
import { usageError } from '../cli-error.ts';
import { EXIT } from '../exit-codes.ts';
import { compileLocal, openSimulator } from '../local-simulator.ts';
import { createOutput, type Output } from '../output/output.ts';
import { runScenarioFile, type ScenarioRunOptions } from '../testing/run-scenario.ts';
import { caseFilter, readScenarioFile, readText, selectCases } from '../testing/scenario-file.ts';
import { watchAndRerun } from '../testing/watch.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import type { TestOptions } from './test-options.ts';

export async function runTest(policyFile: string, scenarioFile: string | undefined, opts: TestOptions): Promise<void> {
  const out = createOutput(opts.json);
  const simulator = await openSimulator(opts.fuel === undefined ? {} : { fuel: opts.fuel });
  try {
    if (opts.fromAudit !== undefined)
      process.exitCode = await testReplay(out, simulator, policyFile, opts.fromAudit, opts);
    else if (opts.compare !== undefined)
      process.exitCode = await testCompare(out, simulator, policyFile, opts.compare, scenarioFile!, opts);
    else {
      const run: ScenarioRunOptions = {
        reporter: opts.reporter,
        quiet: opts.quiet,
        ...(opts.run !== undefined ? { run: caseFilter(opts.run) } : {}),
        ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}),
      };
      const once = (): Promise<number> => runScenarioFile(out, simulator, policyFile, scenarioFile!, run);
      process.exitCode = opts.watch
        ? await watchAndRerun(out, { policyFile, scenarioFile: scenarioFile! }, once)
        : await once();
    }
  } finally {
    await simulator.close();
  }
}

async function testCompare(
  out: Output,
  simulator: Simulator,
  policyFile: string,
  otherFile: string,
  scenarioFile: string,
  opts: TestOptions,
): Promise<number> {
  const { scenario, skipped } = selectCases(
    await readScenarioFile(scenarioFile),
    opts.run === undefined ? undefined : caseFilter(opts.run),
  );
  out.progress(`compiling ${policyFile} and ${otherFile}`);
  const a = await compileLocal(simulator, policyFile);
  const b = await compileLocal(simulator, otherFile);
  const names = { a: policyFile, b: otherFile, file: scenarioFile };
  const result = await compareBuilds(simulator, a.sha256, b.sha256, scenario, {
    ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}),
    onCompared: out.json
      ? undefined
      : (c) =>
          !opts.quiet || c.differences.length > 0
            ? process.stdout.write(`${formatCompared(c, names, out.colours).join('\n')}\n`)
            : undefined,
  });
  out.result(
    { ...compareResultToJson(result), skipped },
    () => `${compareSummary(result)}${skipped > 0 ? `, ${skipped} skipped` : ''}`,
  );
  return result.different === 0 ? EXIT.ok : EXIT.failed;
}

async function testReplay(
  out: Output,
  simulator: Simulator,
  policyFile: string,
  auditFile: string,
  opts: TestOptions,
): Promise<number> {
  const read = readAuditRecords(await readText(auditFile, 'audit file'));
  if (!read.ok) throw usageError(`${auditFile}: ${read.message}`);
  out.progress(`compiling ${policyFile}`);
  const policy = await compileLocal(simulator, policyFile);
  out.progress(`replaying ${read.records.length} decisions`);
  const result = await replayAudit(
    simulator,
    policy.sha256,
    read.records,
    opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {},
  );
  let written: string | null = null;
  if (opts.writeScenario !== undefined) {
    const text = scenarioFromReplay(result, auditFile);
    if (text !== null) {
      const { writeFile } = await import('node:fs/promises');
      try {
        await writeFile(opts.writeScenario, text);
      } catch (e) {
        throw usageError(
          `cannot write ${opts.writeScenario}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
      }
      written = opts.writeScenario;
    }
  }
  const note =
    opts.writeScenario === undefined
      ? ''
      : written
        ? `\nwrote ${result.changed} case(s) to ${written}: capgate test ${policyFile} ${written}`
        : `\nno decision changed: ${opts.writeScenario} not written`;
  out.result(
    { ...replayResultToJson(result), ...(opts.writeScenario !== undefined ? { scenarioWritten: written } : {}) },
    () => `${formatReplayResult(result, out.colours)}${note}`,
  );
  return result.changed === 0 ? EXIT.ok : EXIT.failed;
}
