// The lines that explain one case's outcome, shared by the JUnit and TAP reporters.
import { showCall } from '../check.ts';
import type { CaseResult } from '../runner.ts';

export function caseDetail(r: CaseResult): string[] {
  const o = r.outcome;
  const out = [
    `decision: ${o.decision === 'allow' ? 'allow' : `deny(${JSON.stringify(o.reason)})`}, fuel ${o.fuelUsed}`,
  ];
  if (o.errorKind) out.push(`error: ${o.errorKind}${o.errorDetail ? `: ${o.errorDetail}` : ''}`);
  for (const m of r.mismatches) out.push(`${m.what}: expected ${m.expected}, got ${m.actual}`);
  for (const c of o.capabilityCalls) out.push(`call ${showCall(c)}`);
  for (const l of o.logs) out.push(`log ${l.level}: ${l.message}`);
  return out;
}
