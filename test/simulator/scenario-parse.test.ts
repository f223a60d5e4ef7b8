import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseScenario, type ScenarioIssue } from '../../runtime/simulator/scenario/parse.ts';
import { GUEST_EXAMPLES_DIR } from '../../scripts/build-guests.ts';

const VALID = `host:
  canRaiseHardLimit: true
vms:
  - uuid: u-1
    name: vm-a
    id: 7
    labels:
      vfio: true
      capgate.io/memlock-max: 17179869184
    pids: [100, 101]
processes:
  - pid: 101
    memlock: { soft: 64Ki, hard: 8Gi }
  - pid: 500
    memlock: unlimited
cases:
  - name: first
    request: { requesterPid: 100, requesterUid: 107, targetPid: 101, bytes: 8Gi }
    expect:
      decision: deny
      reason: /^over-/i
      calls:
        - { op: query-vm-identity, pid: 101, result: some }
        - { op: set-memlock, bytes: unlimited }
      logs:
        - { level: warn, message: too much }
      maxFuel: 5000
  - request: { requesterPid: 100, bytes: 1 }
    host: { canRaiseHardLimit: false }
    expect: { decision: allow }
`;

function issues(text: string): ScenarioIssue[] {
  const r = parseScenario(text);
  if (r.ok) throw new Error('expected the scenario to be rejected');
  return r.issues;
}

describe('scenario parsing', () => {
  it('reads every part of a valid scenario', () => {
    const r = parseScenario(VALID);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const s = r.scenario;
    expect(s.host.canRaiseHardLimit).toBe(true);
    expect(s.vms[0]!.identity).toEqual({
      uuid: 'u-1',
      name: 'vm-a',
      id: 7,
      labels: [
        ['vfio', 'true'],
        ['capgate.io/memlock-max', '17179869184'],
      ],
    });
    expect(s.processes).toEqual([
      { pid: 101, memlock: { soft: 65536n, hard: 8n << 30n } },
      { pid: 500, memlock: { soft: 0xffff_ffff_ffff_ffffn, hard: 0xffff_ffff_ffff_ffffn } },
    ]);
    const [first, second] = s.cases;
    expect(first!.request).toEqual({
      operation: 'set-memlock',
      requesterPid: 100,
      requesterUid: 107,
      targetPid: 101,
      bytes: 8n << 30n,
    });
    expect(first!.expect.reason?.kind).toBe('pattern');
    expect(first!.expect.calls).toEqual([
      { op: 'query-vm-identity', pid: 101, result: 'some' },
      { op: 'set-memlock', bytes: 0xffff_ffff_ffff_ffffn },
    ]);
    expect(first!.expect.maxFuel).toBe(5000);
    expect(first!.position).toEqual({ line: 17, col: 5 });
    // Defaults: name from the index, target = requester, uid 0.
    expect(second!.name).toBe('case 2');
    expect(second!.request.targetPid).toBe(100);
    expect(second!.request.requesterUid).toBe(0);
    expect(second!.host).toEqual({ canRaiseHardLimit: false });
  });

  it('accepts the example scenarios shipped with the AssemblyScript examples', () => {
    for (const name of ['memlock-cap', 'vfio-only']) {
      const r = parseScenario(readFileSync(`${GUEST_EXAMPLES_DIR}/assemblyscript/${name}/scenario.yaml`, 'utf8'));
      expect(r.ok ? 'ok' : r.issues).toBe('ok');
    }
  });

  it('accepts the example in SCENARIO.md', () => {
    const doc = readFileSync(new URL('../../runtime/simulator/SCENARIO.md', import.meta.url), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const r = parseScenario(yaml);
    expect(r.ok ? r.scenario.cases.length : r.issues).toBe(1);
  });

  it('reports each problem at its line and column, saying what to write', () => {
    const found = issues(`vms:
  - uuid: u-1
    name: vm-a
    id: 1.5
    pids: [100, -3]
cases:
  - request: { requesterPid: 100, bytes: 8X }
    expect: { decision: maybe, reason: "/[/" }
  - request: { requesterPid: 100, bytes: 1Gi }
    expect: { decision: allow, calls: [{ op: set-memlock, result: nope }] }
    extra: 1
`);
    const at = (line: number): string[] => found.filter((i) => i.line === line).map((i) => `${i.col}: ${i.message}`);
    expect(at(4)).toEqual([expect.stringMatching(/^9: "id" .*whole number/)]);
    expect(at(5)).toEqual([expect.stringMatching(/^17: a pid .*whole number between 1/)]);
    expect(at(7)).toEqual([
      expect.stringMatching(/^42: "bytes": "8X" has an unknown suffix "X": write a Kubernetes quantity/),
    ]);
    expect(at(8)).toEqual([
      expect.stringMatching(/^25: "decision" must be one of: allow, deny/),
      expect.stringMatching(/^40: "reason" is not a valid regular expression/),
    ]);
    expect(at(10)).toEqual([expect.stringMatching(/"result" of set-memlock must be one of: ok, not-permitted/)]);
    expect(at(11)).toEqual([
      expect.stringMatching(/^5: unknown key "extra" in case 2; allowed keys: name, request, expect, host/),
    ]);
    expect(found).toHaveLength(7);
  });

  it('reports YAML syntax errors with their position', () => {
    const [first] = issues('cases:\n  - request: { requesterPid: 1\n    expect: x\n');
    expect(first!.message).toMatch(/^YAML syntax/);
    expect(first!.line).toBeGreaterThan(1);
    const [colon] = issues(
      'cases:\n  - request: { requesterPid: 1, bytes: 1 }\n    expect:\n      decision: deny\n      reason: set-memlock-failed: x\n',
    );
    expect(colon).toEqual({
      line: 5,
      col: 15,
      message:
        'YAML syntax: Nested mappings are not allowed in compact mappings; quote values that contain ": " (e.g. reason: "set-memlock-failed: not-permitted")',
    });
  });

  it('names missing required keys at the mapping that needs them', () => {
    const found = issues('vms:\n  - name: a\n    id: 1\ncases:\n  - request: { bytes: 1Gi }\n    expect: {}\n');
    expect(found.map((i) => `${i.line}:${i.col} ${i.message}`)).toEqual([
      '2:5 a VM needs "uuid"',
      '5:14 "request" (the kernel-verified pid of the client) needs "requesterPid"',
      '6:13 "expect" needs "decision"',
    ]);
  });

  it('refuses contradictions the kernel would never show', () => {
    const found = issues(`vms:
  - { uuid: a, name: a, id: 1, pids: [5] }
  - { uuid: b, name: b, id: 2, pids: [5] }
processes:
  - { pid: 9, memlock: { soft: 8Gi, hard: 1Gi } }
cases:
  - { request: { requesterPid: 5, bytes: 1 }, expect: { decision: allow } }
`);
    expect(found.map((i) => i.message)).toEqual([
      expect.stringMatching(/soft limit is above the hard limit/),
      expect.stringMatching(/pid 5 is listed in VM "a" and VM "b"/),
    ]);
  });

  it('simulates a daemon holding CAP_SYS_RESOURCE unless told otherwise', () => {
    const r = parseScenario(
      'absentPids: [1]\ncases:\n  - { request: { requesterPid: 1, bytes: 1 }, expect: { decision: allow } }\n',
    );
    expect(r.ok && r.scenario.host).toEqual({ canRaiseHardLimit: true, policyBound: true });
  });

  it('requires at least one case', () => {
    expect(issues('vms: []\n')[0]!.message).toMatch(/needs "cases"/);
    expect(issues('cases: []\n')[0]!.message).toMatch(/"cases" is empty/);
  });

  it('refuses a request pid declared nowhere, at its line and column', () => {
    const found = issues(`vms:
  - { uuid: a, name: a, id: 1, pids: [5, 6] }
processes:
  - { pid: 9, memlock: 8Mi }
absentPids: [13]
cases:
  - { request: { requesterPid: 5, targetPid: 7, bytes: 1 }, expect: { decision: allow } }
  - { request: { requesterPid: 8, bytes: 1 }, expect: { decision: allow } }
  - { request: { requesterPid: 5, targetPid: 9, bytes: 1 }, expect: { decision: allow } }
  - { request: { requesterPid: 13, targetPid: 6, bytes: 1 }, expect: { decision: allow } }
`);
    expect(found.map((i) => `${i.line}:${i.col} ${i.message}`)).toEqual([
      '7:46 targetPid 7 is declared nowhere: list it in a VM\'s "pids" (a member of that VM), in "processes" (a host process), or in "absentPids" (no such process)',
      expect.stringMatching(/^8:32 requesterPid 8 is declared nowhere/),
    ]);
  });

  it('refuses a pid that is both absent and present', () => {
    const found = issues(
      'vms:\n  - { uuid: a, name: a, id: 1, pids: [5] }\nabsentPids: [5]\ncases:\n  - { request: { requesterPid: 5, bytes: 1 }, expect: { decision: allow } }\n',
    );
    expect(found.map((i) => `${i.line}:${i.col} ${i.message}`)).toEqual([
      '3:13 pid 5 is in "absentPids" and also exists (in a VM or in "processes"); keep one',
    ]);
  });

  it('reads decision: any, policyBound, and a case with a world of its own', () => {
    const r = parseScenario(`vms:
  - { uuid: a, name: a, id: 1, pids: [5] }
cases:
  - request: { requesterPid: 5, bytes: 1 }
    host: { policyBound: false }
    expect: { decision: any, maxFuel: 10 }
  - request: { requesterPid: 70, targetPid: 71, bytes: 1 }
    vms: [{ uuid: b, name: b, id: 2, pids: [70, 71] }]
    absentPids: [5]
    expect: { decision: deny }
`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const [first, second] = r.scenario.cases;
    expect(first!.expect.decision).toBe('any');
    expect(first!.host).toEqual({ policyBound: false });
    expect(first!.world).toBeUndefined();
    expect(second!.world).toEqual({
      vms: [{ identity: { uuid: 'b', name: 'b', id: 2, labels: [] }, pids: [70, 71] }],
      processes: [],
      absentPids: [5],
    });
  });

  it('reports every problem of a file in one run, a YAML syntax error included', () => {
    const found = issues(`vms:
  - { uuid: a, name: a, id: 1, pids: [5] }
cases:
  - request: { requesterPid: 5, bytes: 1Gi }
    expect:
      decision: deny
      reason: set-memlock-failed: not-permitted
  - request: { requesterPid: 5, bytes: 4GB }
    expect: { decision: allow }
  - request: { requesterPid: 6, bytes: 1 }
    expect: { decision: maybe }
`);
    expect(found.map((i) => `${i.line}:${i.col} ${i.message.replace(/:.*/s, '')}`)).toEqual([
      '7:15 YAML syntax',
      '8:40 "bytes"',
      '11:25 "decision" must be one of',
      '10:30 requesterPid 6 is declared nowhere',
    ]);
    // The syntax error is reported alone: not also as "reason must be a string" on its line.
    expect(found.filter((i) => i.line === 7)).toHaveLength(1);
  });

  it('gives the "quote values" hint only where a value holds ": "', () => {
    const [indent] = issues(
      'cases:\n  - name: a\n     request: { requesterPid: 1, bytes: 1 }\n    expect: { decision: allow }\n',
    );
    expect(indent!.message).toMatch(/^YAML syntax: .*; check the indentation of this line and the lines below it$/);
    expect(indent!.message).not.toMatch(/quote/);
    const [flow] = issues('cases:\n  - request: { requesterPid: 1, bytes: 1\n    expect: { decision: allow }\n');
    expect(flow!.message).not.toMatch(/quote/);
  });
});
