// `capgate eval` as a real process: one decision from flags, printed for people and as JSON.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { componentize } from '../../runtime/packaging/componentize.ts';
import { compileAssemblyScript, REPO_ROOT } from '../../scripts/build-guests.ts';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { runCli } from './support/run-cli.ts';

let guests: ExampleGuests;
let dir: string;
beforeAll(async () => {
  guests = await ensureExampleGuests();
  dir = mkdtempSync(join(tmpdir(), 'capgate-eval-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Throws (AssemblyScript's abort) for one byte, reads out of bounds for two.
const CRASHING = `
import { Decision, Request, allow, policy } from "../../../host-api/assemblyscript/index";
export * from "../../../host-api/assemblyscript/abi";
function decide(req: Request): Decision {
  if (req.bytes == 1) throw new Error("one byte is no limit");
  const slots = new Array<u64>(1);
  return slots[<i32>req.bytes - 1] == 0 ? allow() : allow();
}
policy(decide);
`;

interface EvalJson {
  decision: string;
  reason: string;
  errorKind?: string;
  errorDetail?: string;
  calls: Array<{ op: string; pid: number; bytes?: string; result: string }>;
  logs: Array<{ level: string; message: string }>;
  fuelUsed: number;
  fuelLimit: number;
  request: { requesterPid: number; targetPid: number; bytes: string };
}

describe('capgate eval', () => {
  it('prints decision, reason, calls, logs and fuel; exit 1 on deny', async () => {
    const r = await runCli(['eval', guests.memlockCap, '--bytes', '8Gi', '--label', 'memory-bytes=4294967296']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^decision {2}deny$/m);
    expect(r.stdout).toMatch(/^reason {4}over-cap$/m);
    expect(r.stdout).toMatch(/^calls {5}query-vm-identity\(pid=1001\) -> some$/m);
    expect(r.stdout).toMatch(/^logs {6}warn: request exceeds memory-bytes plus overhead$/m);
    expect(r.stdout).toMatch(/^fuel {6}\d+ of 10000000$/m);
    expect(r.stdout).toMatch(/^request {3}pid 1000 \(uid 0\) in VM vm asks 8Gi for pid 1001, in the requester's VM/m);
  });

  it('allows with exit 0 and gives the same as JSON, sizes in binary form', async () => {
    const r = await runCli([
      'eval',
      guests.memlockCap,
      '--bytes',
      '1Gi',
      '--label',
      'memory-bytes=4294967296',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as EvalJson;
    expect(j).toMatchObject({
      decision: 'allow',
      reason: '',
      fuelLimit: 10_000_000,
      request: { requesterPid: 1000, targetPid: 1001, bytes: '1Gi' },
    });
    expect(j.calls).toEqual([
      { op: 'query-vm-identity', pid: 1001, result: 'some' },
      { op: 'set-memlock', pid: 1001, bytes: '1Gi', result: 'ok' },
    ]);
    expect(j.logs).toEqual([{ level: 'info', message: 'memlock raised' }]);
    expect(j.fuelUsed).toBeGreaterThan(0);
  });

  it('places the target where --target says, and models the kernel and the daemon', async () => {
    const vfio = ['eval', guests.vfioOnly, '--bytes', '1Gi', '--label', 'vfio=true', '--json'];
    const other = JSON.parse((await runCli([...vfio, '--target', 'other-vm'])).stdout) as EvalJson;
    expect([other.reason, other.calls]).toEqual([
      'target-not-in-requester-vm',
      [{ op: 'query-vm-identity', pid: 2001, result: 'none' }],
    ]);
    const refused = JSON.parse(
      (await runCli([...vfio, '--memlock', '64Ki', '--no-cap-sys-resource'])).stdout,
    ) as EvalJson;
    expect(refused.reason).toBe('set-memlock-failed: not-permitted');
    const unbound = JSON.parse((await runCli([...vfio, '--no-bound'])).stdout) as EvalJson;
    expect(unbound).toMatchObject({
      decision: 'deny',
      reason: 'no-policy',
      errorKind: 'no-policy',
      fuelUsed: 0,
      calls: [],
    });
  });

  it('refuses bad flags with exit 2', async () => {
    const r = await runCli(['eval', guests.memlockCap, '--bytes', '4GB']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"4GB" is ambiguous/);
    const m = await runCli(['eval', guests.memlockCap, '--bytes', '1Gi', '--memlock', '8Mi:64Ki']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/soft limit 8Mi is above the hard limit 64Ki/);
    const t = await runCli(['eval', guests.memlockCap, '--bytes', '1Gi', '--target', 'mars']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/Allowed choices are vm, requester, other-vm, host, absent/);
  });
});

describe('a crash says why, in eval and in test', () => {
  it("prints the SDK's panic line and names the function that trapped", async () => {
    const entry = join(REPO_ROOT, 'guest-examples/assemblyscript/__crashing__/index.ts');
    const wasm = join(dir, 'crashing.wasm');
    writeFileSync(
      wasm,
      await componentize(
        await compileAssemblyScript(entry, { virtualFiles: { [entry]: CRASHING }, extraFlags: ['--debug'] }),
      ),
    );
    const thrown = await runCli(['eval', wasm, '--bytes', '1']);
    expect(thrown.code).toBe(1);
    expect(thrown.stdout).toMatch(
      /^error {5}trap: evaluate: unreachable, in \S*capgateAbort \(wasm function \d+\), called from \S*__crashing__\/index\/decide \(wasm function \d+\)$/m,
    );
    expect(thrown.stdout).toMatch(/^logs {6}error: panic: one byte is no limit at \S*__crashing__\/index\.ts:5:\d+$/m);
    const oob = await runCli(['eval', wasm, '--bytes', '3', '--json']);
    expect(JSON.parse(oob.stdout)).toMatchObject({
      reason: 'trap',
      logs: [
        { level: 'error', message: expect.stringMatching(/^panic: Index out of range at ~lib\/array\.ts:\d+:\d+$/) },
      ],
    });

    const scenario = join(dir, 'crash.yaml');
    writeFileSync(
      scenario,
      'vms:\n  - { uuid: u, name: v, id: 1, pids: [10] }\ncases:\n  - name: one byte\n    request: { requesterPid: 10, bytes: 1 }\n    expect: { decision: allow }\n',
    );
    const test = await runCli(['test', wasm, scenario]);
    expect(test.code).toBe(1);
    expect(test.stdout).toMatch(/^FAIL {2}one byte .*-> deny\("trap"\)/m);
    expect(test.stdout).toMatch(/^ {6}error: trap: evaluate: unreachable, in \S*capgateAbort .*called from \S*decide/m);
    expect(test.stdout).toMatch(/^ {6}log error: panic: one byte is no limit at /m);
  });
});
