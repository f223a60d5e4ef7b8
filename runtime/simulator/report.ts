// The simulator's report: human text (what `capgate test` prints) and a JSON-safe form.
import type { CapabilityCall } from '../engine/outcome.ts';
import { formatByteSize } from './byte-size.ts';
import { showCall } from './check.ts';
import type { CaseResult, ScenarioResult } from './runner.ts';

/** Colouring hooks; the CLI passes real ones on a TTY, the library defaults to plain text. */
export interface Paint {
  pass(s: string): string;
  fail(s: string): string;
  dim(s: string): string;
}
export const PLAIN: Paint = { pass: (s) => s, fail: (s) => s, dim: (s) => s };

export function summaryLine(passed: number, failed: number): string {
  return `${passed} passed, ${failed} failed`;
}

export function formatCase(r: CaseResult, file: string | undefined, paint: Paint = PLAIN): string[] {
  const o = r.outcome;
  const where = r.case.position && file ? paint.dim(`  ${file}:${r.case.position.line}:${r.case.position.col}`) : '';
  const verdict = o.decision === 'allow' ? 'allow' : `deny(${JSON.stringify(o.reason)})`;
  const lines = [
    `${r.passed ? paint.pass('PASS') : paint.fail('FAIL')}  ${r.case.name}${where}  ${paint.dim(`-> ${verdict}, fuel ${o.fuelUsed}`)}`,
  ];
  for (const m of r.mismatches) lines.push(`      ${m.what}: expected ${m.expected}, got ${paint.fail(m.actual)}`);
  if (o.errorKind) lines.push(`      error: ${o.errorKind}${o.errorDetail ? `: ${o.errorDetail}` : ''}`);
  if (!r.passed) for (const c of o.capabilityCalls) lines.push(paint.dim(`      call ${showCall(c)}`));
  for (const l of o.logs) lines.push(paint.dim(`      log ${l.level}: ${l.message}`));
  return lines;
}

export function formatScenarioResult(result: ScenarioResult, file?: string, paint: Paint = PLAIN): string {
  const lines = result.cases.flatMap((c) => formatCase(c, file, paint));
  lines.push(summaryLine(result.passed, result.failed));
  return lines.join('\n');
}

export interface CallJson {
  op: CapabilityCall['op'];
  pid: number;
  bytes?: string;
  result: string;
  detail?: string;
}

export function callToJson(c: CapabilityCall): CallJson {
  if (c.op === 'set-memlock')
    return {
      op: c.op,
      pid: c.pid,
      bytes: formatByteSize(c.bytes),
      result: c.result,
      ...(c.detail ? { detail: c.detail } : {}),
    };
  return { op: c.op, pid: c.pid, result: c.result };
}

export function scenarioResultToJson(result: ScenarioResult): object {
  return {
    passed: result.passed,
    failed: result.failed,
    cases: result.cases.map((r) => ({
      name: r.case.name,
      ...(r.case.position ? { line: r.case.position.line } : {}),
      passed: r.passed,
      decision: r.outcome.decision,
      reason: r.outcome.reason,
      ...(r.outcome.errorKind ? { errorKind: r.outcome.errorKind, errorDetail: r.outcome.errorDetail } : {}),
      fuelUsed: r.outcome.fuelUsed,
      durationUs: r.outcome.durationUs,
      decidedBy: r.outcome.decidedBy,
      calls: r.outcome.capabilityCalls.map(callToJson),
      logs: r.outcome.logs,
      mismatches: r.mismatches,
    })),
  };
}
