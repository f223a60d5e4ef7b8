// Compares what a policy did with what the scenario expected. Each difference is one line
// of the report, phrased as expected-vs-actual.
import type { CapabilityCall, LogLine } from '../engine/outcome.ts';
import type { Decided } from '../server/request/daemon-deny.ts';
import { formatByteSize } from './byte-size.ts';
import type { CaseExpectation, ExpectedCall, ExpectedLog, ReasonMatcher } from './scenario/types.ts';

export interface Mismatch {
  what: string;
  expected: string;
  actual: string;
}

export function matches(m: ReasonMatcher, text: string): boolean {
  return m.kind === 'exact' ? m.text === text : m.regex.test(text);
}

export function showMatcher(m: ReasonMatcher): string {
  return m.kind === 'exact' ? JSON.stringify(m.text) : String(m.regex);
}

export function showCall(c: CapabilityCall | ExpectedCall): string {
  const args = [c.pid === undefined ? 'pid=*' : `pid=${c.pid}`];
  if (c.op === 'set-memlock') args.push(c.bytes === undefined ? 'bytes=*' : `bytes=${formatByteSize(c.bytes)}`);
  return `${c.op}(${args.join(', ')}) -> ${c.result ?? '*'}`;
}

function callMatches(e: ExpectedCall, a: CapabilityCall): boolean {
  if (e.op !== a.op) return false;
  if (e.pid !== undefined && e.pid !== a.pid) return false;
  if (e.result !== undefined && e.result !== a.result) return false;
  if (e.op === 'set-memlock' && a.op === 'set-memlock' && e.bytes !== undefined && e.bytes !== a.bytes) return false;
  return true;
}

function showLog(l: LogLine | ExpectedLog): string {
  const msg = typeof l.message === 'string' ? JSON.stringify(l.message) : showMatcher(l.message);
  return `${l.level ?? '*'}: ${msg}`;
}

function logMatches(e: ExpectedLog, a: LogLine): boolean {
  return (e.level === undefined || e.level === a.level) && matches(e.message, a.message);
}

function compareLists<E, A>(
  what: string,
  expected: E[],
  actual: A[],
  eq: (e: E, a: A) => boolean,
  showE: (e: E) => string,
  showA: (a: A) => string,
): Mismatch[] {
  const out: Mismatch[] = [];
  const n = Math.max(expected.length, actual.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i];
    const a = actual[i];
    if (e !== undefined && a !== undefined && eq(e, a)) continue;
    out.push({
      what: `${what} ${i + 1}`,
      expected: e === undefined ? '(no more)' : showE(e),
      actual: a === undefined ? '(none)' : showA(a),
    });
  }
  return out;
}

export function checkOutcome(expect: CaseExpectation, outcome: Decided): Mismatch[] {
  const out: Mismatch[] = [];
  if (expect.decision !== 'any' && outcome.decision !== expect.decision)
    out.push({ what: 'decision', expected: expect.decision, actual: outcome.decision });
  if (expect.reason && !matches(expect.reason, outcome.reason)) {
    out.push({ what: 'reason', expected: showMatcher(expect.reason), actual: JSON.stringify(outcome.reason) });
  }
  if (expect.calls)
    out.push(...compareLists('call', expect.calls, outcome.capabilityCalls, callMatches, showCall, showCall));
  if (expect.logs) out.push(...compareLists('log', expect.logs, outcome.logs, logMatches, showLog, showLog));
  if (expect.maxFuel !== undefined && outcome.fuelUsed > expect.maxFuel) {
    out.push({ what: 'fuel', expected: `<= ${expect.maxFuel}`, actual: String(outcome.fuelUsed) });
  }
  return out;
}
