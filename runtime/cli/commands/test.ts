// `capgate test <policy.wasm> <scenario.yaml>` and `--from-audit <file>`: the guest simulator.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseScenario } from '../../simulator/scenario/parse.ts';
import { runScenario } from '../../simulator/runner.ts';
import { formatCase, scenarioResultToJson, summaryLine } from '../../simulator/report.ts';
import { readAuditRecords } from '../../simulator/replay/read-audit.ts';
import { replayAudit } from '../../simulator/replay/replay.ts';
import { formatReplayResult, replayResultToJson } from '../../simulator/replay/report.ts';
import { DEFAULT_LIMITS } from '../../engine/limits.ts';
import { CliError, usageError } from '../cli-error.ts';
import { EXIT } from '../exit-codes.ts';
import { loadLocalPolicy } from '../local-engine.ts';
import { examples, positiveIntArg, withJson } from '../options.ts';
import { createOutput, type Output } from '../output/output.ts';

interface TestOptions {
  json: boolean;
  fromAudit?: string;
  fuel?: number;
  deadlineMs?: number;
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw usageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export function registerTest(program: Command): void {
  const cmd = program
    .command('test')
    .description('run a policy against a scenario file (simulated VMs and processes), or replay audit records against it')
    .argument('<policy.wasm>', 'policy component to test')
    .argument('[scenario.yaml]', 'scenario: VMs, processes, and cases with expected decisions')
    .option('--from-audit <file>', 'replay audit records (`capgate audit ls --json`) and report every decision that would change')
    .option('--fuel <n>', 'instruction budget per evaluation (default: the daemon default)', positiveIntArg('--fuel'))
    .option('--deadline-ms <ms>', `wall-clock deadline per evaluation (default: the daemon's, ${DEFAULT_LIMITS.deadlineMs} ms)`, positiveIntArg('--deadline-ms'));
  withJson(cmd);
  examples(cmd, [
    'capgate test build/policy.wasm scenario.yaml',
    'capgate test build/policy.wasm scenario.yaml --json | jq .failed',
    'capgate audit ls --json --limit 1000 > audit.json && capgate test new.wasm --from-audit audit.json',
  ]);
  cmd.addHelpText('after', '\nExit status: 0 when every case passes (or no replayed decision changes), 1 otherwise, 2 for a malformed scenario.\n');
  cmd.action(async (policyFile: string, scenarioFile: string | undefined, opts: TestOptions) => {
    const out = createOutput(opts.json);
    if (scenarioFile === undefined && opts.fromAudit === undefined) {
      throw usageError('nothing to test: give a scenario file or --from-audit <file>', 'capgate test policy.wasm scenario.yaml');
    }
    if (scenarioFile !== undefined && opts.fromAudit !== undefined) {
      throw usageError('give either a scenario file or --from-audit, not both');
    }
    process.exitCode = scenarioFile !== undefined ? await testScenario(out, policyFile, scenarioFile, opts) : await testReplay(out, policyFile, opts.fromAudit!, opts);
  });
}

async function testScenario(out: Output, policyFile: string, scenarioFile: string, opts: TestOptions): Promise<number> {
  const parsed = parseScenario(await readText(scenarioFile, 'scenario'));
  if (!parsed.ok) {
    throw new CliError(
      `${scenarioFile} is not a valid scenario:\n${parsed.issues.map((i) => `  ${scenarioFile}:${i.line}:${i.col}: ${i.message}`).join('\n')}`,
      EXIT.usage,
      'fix the lines above; `capgate init` writes a complete example scenario',
      { issues: parsed.issues },
    );
  }
  out.progress(`compiling ${policyFile}`);
  const { engine, policy } = await loadLocalPolicy(policyFile, opts.fuel === undefined ? {} : { fuel: opts.fuel });
  try {
    const result = await runScenario(engine, policy.sha256, parsed.scenario, {
      ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}),
      onCase: out.json ? undefined : (r) => process.stdout.write(`${formatCase(r, scenarioFile, out.colours).join('\n')}\n`),
    });
    // Human output was streamed case by case; the summary line closes it.
    out.result(scenarioResultToJson(result), () => summaryLine(result.passed, result.failed));
    return result.failed === 0 ? EXIT.ok : EXIT.failed;
  } finally {
    await engine.close();
  }
}

async function testReplay(out: Output, policyFile: string, auditFile: string, opts: TestOptions): Promise<number> {
  const read = readAuditRecords(await readText(auditFile, 'audit file'));
  if (!read.ok) throw usageError(`${auditFile}: ${read.message}`);
  out.progress(`compiling ${policyFile}`);
  const { engine, policy } = await loadLocalPolicy(policyFile, opts.fuel === undefined ? {} : { fuel: opts.fuel });
  try {
    out.progress(`replaying ${read.records.length} decisions`);
    const result = await replayAudit(engine, policy.sha256, read.records, opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {});
    out.result(replayResultToJson(result), () => formatReplayResult(result, out.colours));
    return result.changed === 0 ? EXIT.ok : EXIT.failed;
  } finally {
    await engine.close();
  }
}
