// Two builds, one scenario (`capgate test a.wasm scenario.yaml --compare b.wasm`): every case is
// decided by both, as the daemon would, and every observable difference is listed. The
// scenario's expectations are not checked: the question is "do these builds behave the same?"
// (an AssemblyScript and a Rust port, a refactoring, a new compiler version).
import type { Decided } from '../server/request/daemon-deny.ts';
import { showCall } from './check.ts';
import type { Paint } from './report.ts';
import { PLAIN } from './report.ts';
import { decideCase, type RunOptions } from './runner.ts';
import type { Simulator } from './simulator.ts';
import type { Scenario, ScenarioCase } from './scenario/types.ts';

export interface Difference {
  what: string;
  a: string;
  b: string;
}

export interface ComparedCase {
  case: ScenarioCase;
  a: Decided;
  b: Decided;
  differences: Difference[];
}

export interface CompareResult {
  cases: ComparedCase[];
  same: number;
  different: number;
}

const verdict = (o: Decided): string => (o.decision === 'allow' ? 'allow' : `deny(${JSON.stringify(o.reason)})`);

function listDifferences(what: string, a: string[], b: string[]): Difference[] {
  const out: Difference[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) out.push({ what: `${what} ${i + 1}`, a: a[i] ?? '(none)', b: b[i] ?? '(none)' });
  }
  return out;
}

/** What a user can observe of a decision; fuel and time differ between builds by nature. */
export function differences(a: Decided, b: Decided): Difference[] {
  const out: Difference[] = [];
  if (a.decision !== b.decision || a.reason !== b.reason) out.push({ what: 'decision', a: verdict(a), b: verdict(b) });
  if ((a.errorKind ?? '') !== (b.errorKind ?? ''))
    out.push({ what: 'error', a: a.errorKind ?? '(none)', b: b.errorKind ?? '(none)' });
  out.push(...listDifferences('call', a.capabilityCalls.map(showCall), b.capabilityCalls.map(showCall)));
  out.push(
    ...listDifferences(
      'log',
      a.logs.map((l) => `${l.level}: ${l.message}`),
      b.logs.map((l) => `${l.level}: ${l.message}`),
    ),
  );
  return out;
}

export async function compareBuilds(
  simulator: Simulator,
  a: string,
  b: string,
  scenario: Scenario,
  options: RunOptions & { onCompared?: (c: ComparedCase) => void } = {},
): Promise<CompareResult> {
  const cases: ComparedCase[] = [];
  for (const c of scenario.cases) {
    const oa = await decideCase(simulator, a, scenario, c, options);
    const ob = await decideCase(simulator, b, scenario, c, options);
    const compared = { case: c, a: oa, b: ob, differences: differences(oa, ob) };
    cases.push(compared);
    options.onCompared?.(compared);
  }
  const different = cases.filter((c) => c.differences.length > 0).length;
  return { cases, same: cases.length - different, different };
}

export function formatCompared(
  c: ComparedCase,
  names: { a: string; b: string; file?: string },
  paint: Paint = PLAIN,
): string[] {
  const where =
    c.case.position && names.file ? paint.dim(`  ${names.file}:${c.case.position.line}:${c.case.position.col}`) : '';
  if (c.differences.length === 0)
    return [
      `${paint.pass('SAME')}  ${c.case.name}${where}  ${paint.dim(`-> ${verdict(c.a)}, fuel ${c.a.fuelUsed} / ${c.b.fuelUsed}`)}`,
    ];
  const lines = [`${paint.fail('DIFF')}  ${c.case.name}${where}`];
  for (const d of c.differences)
    lines.push(
      `      ${d.what}: ${names.a}: ${d.a}`,
      `      ${' '.repeat(d.what.length)}  ${names.b}: ${paint.fail(d.b)}`,
    );
  lines.push(paint.dim(`      fuel ${c.a.fuelUsed} / ${c.b.fuelUsed}`));
  return lines;
}

export function compareSummary(r: CompareResult): string {
  return `${r.same} same, ${r.different} different`;
}

export function compareResultToJson(r: CompareResult): object {
  return {
    same: r.same,
    different: r.different,
    cases: r.cases.map((c) => ({
      name: c.case.name,
      ...(c.case.position ? { line: c.case.position.line } : {}),
      same: c.differences.length === 0,
      a: {
        decision: c.a.decision,
        reason: c.a.reason,
        fuelUsed: c.a.fuelUsed,
        ...(c.a.errorKind ? { errorKind: c.a.errorKind } : {}),
      },
      b: {
        decision: c.b.decision,
        reason: c.b.reason,
        fuelUsed: c.b.fuelUsed,
        ...(c.b.errorKind ? { errorKind: c.b.errorKind } : {}),
      },
      differences: c.differences,
    })),
  };
}
