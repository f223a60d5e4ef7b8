// The simulator with the daemon's real Engine and the real compiled example policies.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulator } from '../../runtime/simulator/simulator.ts';
import { parseScenario } from '../../runtime/simulator/scenario/parse.ts';
import { runScenario } from '../../runtime/simulator/runner.ts';
import { formatScenarioResult } from '../../runtime/simulator/report.ts';
import type { Scenario } from '../../runtime/simulator/scenario/types.ts';
import { ensureExampleGuests, type ExampleGuests } from './support/guests.ts';

let guests: ExampleGuests;
let simulator: Simulator;
let memlockCap: string;
let vfioOnly: string;

async function compile(file: string): Promise<string> {
  const r = await simulator.compile(new Uint8Array(readFileSync(file)));
  if (!r.ok) throw new Error(`${file}: ${r.kind}: ${r.message}`);
  return r.policy.sha256;
}

function scenario(text: string): Scenario {
  const r = parseScenario(text);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.scenario;
}

beforeAll(async () => {
  guests = await ensureExampleGuests();
  simulator = new Simulator();
  memlockCap = await compile(guests.memlockCap);
  vfioOnly = await compile(guests.vfioOnly);
});
afterAll(async () => {
  await simulator?.close();
});

describe('runScenario', () => {
  it('passes every rule of memlock-cap in its example scenario', async () => {
    const s = scenario(readFileSync(guests.memlockCapScenario, 'utf8'));
    const result = await runScenario(simulator, memlockCap, s, { deadlineMs: 5000 });
    expect(formatScenarioResult(result)).toMatch(/^11 passed, 0 failed$/m);
    expect(result.failed).toBe(0);
    const allowed = result.cases.find((c) => c.case.name.startsWith('rules 4 and 7'))!;
    expect(allowed.outcome.fuelUsed).toBeGreaterThan(0);
    expect(allowed.outcome.logs).toEqual([{ level: 'info', message: 'memlock raised' }]);
  });

  it('passes every rule of vfio-only in its example scenario', async () => {
    const result = await runScenario(simulator, vfioOnly, scenario(readFileSync(guests.vfioOnlyScenario, 'utf8')), {
      deadlineMs: 5000,
    });
    expect(result.cases.filter((c) => !c.passed).map((c) => c.mismatches)).toEqual([]);
    expect(result.passed).toBe(5);
  });

  it('fails a case whose expectations the policy does not meet, saying expected vs actual', async () => {
    // memlock-cap allows this; the scenario claims vfio-only semantics.
    const s = scenario(`
vms:
  - { uuid: u, name: plain, id: 1, pids: [10, 11], labels: { memory-bytes: "4294967296" } }
cases:
  - name: wrong on purpose
    request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect:
      decision: deny
      reason: vm-not-vfio
      calls:
        - { op: query-vm-identity, pid: 11, result: some }
        - { op: set-memlock, pid: 11, bytes: 2Gi, result: ok }
      logs:
        - { level: warn, message: /exceeds/ }
      maxFuel: 1
  - name: right
    request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect: { decision: allow }
`);
    const result = await runScenario(simulator, memlockCap, s);
    expect(result.passed).toBe(1);
    expect(result.failed).toBe(1);
    const failed = result.cases[0]!;
    expect(failed.passed).toBe(false);
    expect(failed.mismatches.map((m) => m.what)).toEqual(['decision', 'reason', 'call 2', 'log 1', 'fuel']);
    expect(failed.mismatches[0]).toEqual({ what: 'decision', expected: 'deny', actual: 'allow' });
    expect(failed.mismatches[2]).toEqual({
      what: 'call 2',
      expected: 'set-memlock(pid=11, bytes=2Gi) -> ok',
      actual: 'set-memlock(pid=11, bytes=1Gi) -> ok',
    });
    const text = formatScenarioResult(result, 'inline.yaml');
    expect(text).toMatch(/^FAIL {2}wrong on purpose {2}inline\.yaml:5:5/m);
    expect(text).toMatch(/decision: expected deny, got allow/);
    expect(text).toMatch(/log info: memlock raised/);
    expect(text.split('\n').at(-1)).toBe('1 passed, 1 failed');
  });

  it('gives every case a fresh world: a raise in one case is not seen by the next', async () => {
    // Without CAP_SYS_RESOURCE, raising to 1Gi works only if the hard limit is already 1Gi.
    // Case 1 lowers the hard limit to 1Mi; case 2 must still see the scenario's 2Gi hard limit.
    const s = scenario(`
host: { canRaiseHardLimit: false }
vms:
  - { uuid: u, name: plain, id: 1, pids: [10, 11], labels: { memory-bytes: "4294967296" } }
processes:
  - { pid: 11, memlock: { soft: 64Ki, hard: 2Gi } }
cases:
  - request: { requesterPid: 10, targetPid: 11, bytes: 1Mi }
    expect: { decision: allow }
  - request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect: { decision: allow, calls: [{ op: query-vm-identity }, { op: set-memlock, result: ok }] }
`);
    const result = await runScenario(simulator, memlockCap, s);
    expect(result.cases.map((c) => c.mismatches)).toEqual([[], []]);
  });

  it('uses the same fuel for the same input every time', async () => {
    const s = scenario(readFileSync(guests.memlockCapScenario, 'utf8'));
    const a = await runScenario(simulator, memlockCap, s);
    const b = await runScenario(simulator, memlockCap, s);
    expect(a.cases.map((c) => c.outcome.fuelUsed)).toEqual(b.cases.map((c) => c.outcome.fuelUsed));
  });

  it('answers as the daemon does before any policy runs: unknown-requester, then no-policy', async () => {
    const s = scenario(`
vms:
  - { uuid: u, name: plain, id: 1, pids: [10, 11], labels: { memory-bytes: "4294967296" } }
processes:
  - { pid: 500, memlock: 8Mi }
absentPids: [600]
cases:
  - name: a host process asks
    request: { requesterPid: 500, targetPid: 11, bytes: 1Gi }
    expect: { decision: deny, reason: unknown-requester }
  - name: a process that has exited asks
    request: { requesterPid: 600, targetPid: 11, bytes: 1Gi }
    expect: { decision: deny, reason: unknown-requester }
  - name: nothing bound
    host: { policyBound: false }
    request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect: { decision: deny, reason: no-policy }
  - name: a host process asks while nothing is bound
    host: { policyBound: false }
    request: { requesterPid: 500, targetPid: 11, bytes: 1Gi }
    expect: { decision: deny, reason: unknown-requester }
`);
    const result = await runScenario(simulator, memlockCap, s);
    expect(result.cases.map((c) => c.mismatches)).toEqual([[], [], [], []]);
    // memlock-cap allows 1Gi for this VM, and queries the target's VM first: it never ran.
    for (const c of result.cases) expect([c.outcome.fuelUsed, c.outcome.capabilityCalls]).toEqual([0, []]);
    expect(result.cases.map((c) => `${c.outcome.errorKind}: ${c.outcome.errorDetail}`)).toEqual([
      'unknown-requester: pid 500 is in no registered VM',
      'unknown-requester: the process that connected (pid 600) has exited',
      'no-policy: no policy is bound to set-memlock',
      'unknown-requester: pid 500 is in no registered VM',
    ]);
  });

  it('leaves the decision free with decision: any, and still checks the rest', async () => {
    const s = scenario(`
vms:
  - { uuid: u, name: plain, id: 1, pids: [10, 11], labels: { memory-bytes: "4294967296" } }
cases:
  - request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect: { decision: any, calls: [{ op: query-vm-identity, result: some }, { op: set-memlock, result: ok }] }
  - request: { requesterPid: 10, targetPid: 11, bytes: 8Gi }
    expect: { decision: any, calls: [{ op: query-vm-identity, result: some }] }
  - request: { requesterPid: 10, targetPid: 11, bytes: 8Gi }
    expect: { decision: any, calls: [] }
`);
    const result = await runScenario(simulator, memlockCap, s);
    expect(result.cases.map((c) => c.outcome.decision)).toEqual(['allow', 'deny', 'deny']);
    expect(result.cases.map((c) => c.mismatches.map((m) => m.what))).toEqual([[], [], ['call 1']]);
  });

  it('runs a case in its own world when it has one', async () => {
    const s = scenario(`
vms:
  - { uuid: u, name: plain, id: 1, pids: [10, 11], labels: { memory-bytes: "4294967296" } }
cases:
  - request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect: { decision: allow }
  - request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    vms: [{ uuid: v, name: small, id: 2, pids: [10, 11], labels: { memory-bytes: "268435456" } }]
    expect: { decision: deny, reason: over-cap }
`);
    const result = await runScenario(simulator, memlockCap, s);
    expect(result.cases.map((c) => c.mismatches)).toEqual([[], []]);
  });
});
