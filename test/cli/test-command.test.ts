// `capgate test` as a real process: scenarios that pass, fail and are malformed; replay.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { vfioOnlyHistory } from '../simulator/support/audit-records.ts';
import { runCli } from './support/run-cli.ts';

let guests: ExampleGuests;
let dir: string;

beforeAll(async () => {
  guests = await ensureExampleGuests();
  dir = mkdtempSync(join(tmpdir(), 'capgate-cli-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('capgate test <policy> <scenario>', () => {
  it('passes the example scenarios and ends with the summary line', async () => {
    const r = await runCli(['test', guests.memlockCap, guests.memlockCapScenario]);
    expect(r.stderr).toBe('');
    expect(r.code, r.stdout).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('11 passed, 0 failed');
    expect(lines.filter((l) => l.startsWith('PASS  '))).toHaveLength(11);
    expect(r.stdout).toMatch(/PASS {2}rule 5: one byte over the cap .*-> deny\("over-cap"\), fuel \d+/);
    expect(r.stdout).toMatch(/log warn: request exceeds memory-bytes plus overhead/);

    const vfio = await runCli(['test', guests.vfioOnly, guests.vfioOnlyScenario]);
    expect(vfio.code, vfio.stdout).toBe(0);
    expect(vfio.stdout.trimEnd().split('\n').at(-1)).toBe('5 passed, 0 failed');
  });

  it('fails with exit 1, expected vs actual, the case position and the logs', async () => {
    const scenario = file(
      'wrong.yaml',
      `vms:
  - { uuid: u, name: plain, id: 1, pids: [10, 11], labels: { memory-bytes: "4294967296" } }
cases:
  - name: fine
    request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect: { decision: allow }
  - name: expects vfio semantics
    request: { requesterPid: 10, targetPid: 11, bytes: 1Gi }
    expect: { decision: deny, reason: /vfio/ }
`,
    );
    const r = await runCli(['test', guests.memlockCap, scenario]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^PASS {2}fine/m);
    expect(r.stdout).toContain(`FAIL  expects vfio semantics  ${scenario}:7:5`);
    expect(r.stdout).toMatch(/ {6}decision: expected deny, got allow/);
    expect(r.stdout).toMatch(/ {6}reason: expected \/vfio\/, got ""/);
    expect(r.stdout).toMatch(/ {6}call set-memlock\(pid=11, bytes=1Gi\) -> ok/);
    expect(r.stdout).toMatch(/ {6}log info: memlock raised/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('1 passed, 1 failed');
  });

  it('prints JSON with --json', async () => {
    const r = await runCli(['test', guests.vfioOnly, guests.vfioOnlyScenario, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      passed: number;
      failed: number;
      cases: Array<{ name: string; decision: string; fuelUsed: number; calls: Array<{ bytes?: string }> }>;
    };
    expect([j.passed, j.failed]).toEqual([5, 0]);
    const last = j.cases.at(-1)!;
    expect(last.decision).toBe('allow');
    expect(last.fuelUsed).toBeGreaterThan(0);
    expect(last.calls[1]!.bytes).toBe('unlimited');
  });

  it('rejects a malformed scenario with exit 2 and file:line:col per problem', async () => {
    const scenario = file(
      'bad.yaml',
      `vms:
  - uuid: u
    name: plain
    idd: 1
cases:
  - request: { requesterPid: 10, bytes: lots }
    expect: { decision: allow }
`,
    );
    const r = await runCli(['test', guests.memlockCap, scenario]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${scenario}:2:5: a VM needs "id"`);
    expect(r.stderr).toContain(
      `${scenario}:4:5: unknown key "idd" in a VM; allowed keys: uuid, name, id, labels, pids`,
    );
    expect(r.stderr).toContain(`${scenario}:6:41: "bytes": "lots" is not a byte size`);
    expect(r.stderr).toMatch(/hint: fix the lines above/);

    const json = await runCli(['test', guests.memlockCap, scenario, '--json']);
    expect(json.code).toBe(2);
    const body = JSON.parse(json.stdout) as {
      exitCode: number;
      error: { issues: Array<{ line: number; col: number }> };
    };
    expect(body.exitCode).toBe(2);
    expect(body.error.issues.map((i) => `${i.line}:${i.col}`)).toEqual(['4:5', '2:5', '6:41']);
  });

  it('refuses a core module and says how to componentize it', async () => {
    const r = await runCli(['test', guests.memlockCap.replace(/\.wasm$/, '.core.wasm'), guests.memlockCapScenario]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a core WebAssembly module, not a policy component/);
    expect(r.stderr).toMatch(/capgate build .*-o policy\.wasm/);
  });

  it('is a usage error without a scenario or --from-audit', async () => {
    const r = await runCli(['test', guests.memlockCap]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nothing to test/);
  });
});

describe('capgate test --from-audit', () => {
  it('lists every decision the new policy would change and exits 1', async () => {
    const records = [...vfioOnlyHistory()];
    const audit = file('audit.json', JSON.stringify({ records }));
    const r = await runCli(['test', guests.memlockCap, '--from-audit', audit]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^CHANGED {2}d-unlimited/m);
    expect(r.stdout).toMatch(/^CHANGED {2}d-plain/m);
    expect(r.stdout).not.toMatch(/d-outside/);
    expect(r.stdout).toMatch(/old: allow .*\n {6}new: deny\("over-cap"\)/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('1 unchanged, 2 changed');

    const same = await runCli(['test', guests.vfioOnly, '--from-audit', audit, '--json']);
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ unchanged: 3, changed: 0, changes: [] });
  });

  it('explains an unreadable audit file', async () => {
    const r = await runCli(['test', guests.memlockCap, '--from-audit', file('junk.json', '{"nope": 1}')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/capgate audit ls --json/);
  });
});
