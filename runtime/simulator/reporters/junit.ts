// JUnit XML for CI systems (GitLab, Jenkins, GitHub test reporters): one <testcase> per case.
// Names, reasons and log lines come from the scenario and from the policy: everything is escaped,
// and characters XML 1.0 cannot carry at all are replaced.
import type { ScenarioResult } from '../runner.ts';
import { caseDetail } from './case-detail.ts';

// Characters outside XML 1.0's Char production (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF).
const NOT_XML = /[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu;

export function xmlEscape(s: string): string {
  return s
    .replace(NOT_XML, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const seconds = (us: number): string => (us / 1e6).toFixed(6);

export function formatJunit(result: ScenarioResult, suiteName: string): string {
  const total = result.cases.length;
  const time = seconds(result.cases.reduce((t, c) => t + c.outcome.durationUs, 0));
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="capgate" tests="${total}" failures="${result.failed}" errors="0" time="${time}">`,
    `  <testsuite name="${xmlEscape(suiteName)}" tests="${total}" failures="${result.failed}" errors="0" skipped="0" time="${time}">`,
  ];
  for (const r of result.cases) {
    const where = r.case.position ? ` file="${xmlEscape(suiteName)}" line="${r.case.position.line}"` : '';
    const open = `    <testcase name="${xmlEscape(r.case.name)}" classname="${xmlEscape(suiteName)}"${where} time="${seconds(r.outcome.durationUs)}"`;
    const detail = caseDetail(r);
    if (r.passed && r.outcome.logs.length === 0) {
      lines.push(`${open}/>`);
      continue;
    }
    lines.push(`${open}>`);
    if (!r.passed) {
      const summary = r.mismatches.map((m) => `${m.what}: expected ${m.expected}, got ${m.actual}`).join('; ');
      lines.push(
        `      <failure message="${xmlEscape(summary)}" type="mismatch">${xmlEscape(detail.join('\n'))}</failure>`,
      );
    }
    if (r.outcome.logs.length > 0)
      lines.push(
        `      <system-out>${xmlEscape(r.outcome.logs.map((l) => `${l.level}: ${l.message}`).join('\n'))}</system-out>`,
      );
    lines.push('    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>');
  return lines.join('\n');
}
