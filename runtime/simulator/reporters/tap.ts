// TAP version 14 (Test Anything Protocol): `ok N - name` per case, a YAML diagnostic block for
// failures. Names and details are the scenario's and the policy's: kept on their own lines.
import type { ScenarioResult } from '../runner.ts';
import { caseDetail } from './case-detail.ts';

/** One line: a newline or a leading "#" in a name would be read as TAP syntax. */
function tapName(name: string): string {
  return name.replace(/[\r\n]+/g, ' ').replace(/#/g, '\\#');
}

export function formatTap(result: ScenarioResult): string {
  const lines = ['TAP version 14', `1..${result.cases.length}`];
  result.cases.forEach((r, i) => {
    lines.push(`${r.passed ? 'ok' : 'not ok'} ${i + 1} - ${tapName(r.case.name)}`);
    if (r.passed) return;
    lines.push('  ---');
    lines.push(
      `  message: ${JSON.stringify(r.mismatches.map((m) => `${m.what}: expected ${m.expected}, got ${m.actual}`).join('; '))}`,
    );
    if (r.case.position) lines.push(`  at: { line: ${r.case.position.line}, column: ${r.case.position.col} }`);
    lines.push('  detail:');
    for (const d of caseDetail(r)) lines.push(`    - ${JSON.stringify(d)}`);
    lines.push('  ...');
  });
  lines.push(`# ${result.passed} passed, ${result.failed} failed`);
  return lines.join('\n');
}
