// `capgate eval` and `capgate test` take the daemon's evaluation path, as real processes, beside
// a real daemon started by `capgate serve`: a policy that needs more fuel than the daemon's
// speculative slice is continued in a worker in both, its first run's set-memlock seen by the
// continuation, and the simulator lists the calls the daemon's audit lists for the same request.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatByteSize, formatWireBytes } from '../../runtime/simulator/byte-size.ts';
import { continuedPolicyComponent } from '../simulator/support/continued-policy.ts';
import { serveDaemonForFile } from '../support/served-daemon.ts';
import { runCli } from './support/run-cli.ts';

const UUID = '7d1e0c2a-5b3f-4e8a-9c21-0f6b4d8e2a17';
let dir: string;
let wasm: string;
const served = serveDaemonForFile({ vm: true });

interface Call {
  op: string;
  bytes?: string;
  result: string;
}
const shown = (calls: Call[]): string[] => calls.map((c) => `${c.op}(${c.bytes ?? ''}) -> ${c.result}`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'capgate-simpath-'));
  wasm = join(dir, 'continued.wasm');
  writeFileSync(wasm, await continuedPolicyComponent());
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a decision continued past the speculative slice, in the simulator and in the daemon', () => {
  it('capgate eval lists the calls a real daemon lists for the same request, and says where it decided', async () => {
    const push = await runCli([
      'policy',
      'push',
      wasm,
      '--name',
      'continued',
      '--activate',
      'set-memlock',
      ...served.admin,
    ]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    const reg = await runCli([
      'vm',
      'register',
      '--uuid',
      UUID,
      '--name',
      'vm',
      '--id',
      '1',
      '--pid',
      String(served.vm.pid),
      ...served.admin,
    ]);
    expect(reg.code, reg.stderr).toBe(0);

    const before = await served.vm.memlock();
    const bytes = BigInt(before.hard) / 2n;
    const asked = await served.vm.request(String(bytes));
    expect(asked.body).toMatchObject({ decision: 'allow', reason: '' });
    const show = await runCli(['audit', 'show', asked.body.decisionId, '--json', ...served.admin]);
    expect(show.code, show.stderr).toBe(0);
    const record = (JSON.parse(show.stdout) as { record: { capabilityCalls: Call[] } }).record;
    const daemonCalls = record.capabilityCalls.map((c) => ({ ...c, bytes: formatWireBytes(c.bytes!) }));
    // The daemon has no CAP_SYS_RESOURCE: the raise above the hard limit the first call set is refused.
    expect(shown(daemonCalls)).toEqual([
      `set-memlock(${formatByteSize(bytes)}) -> ok`,
      `set-memlock(${formatByteSize(bytes + 4096n)}) -> not-permitted`,
    ]);

    const r = await runCli([
      'eval',
      wasm,
      '--bytes',
      String(bytes),
      '--target',
      'requester',
      '--memlock',
      `${before.soft}:${before.hard}`,
      '--no-cap-sys-resource',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout) as { decision: string; reason: string; calls: Call[]; decidedBy: string };
    expect(o).toMatchObject({ decision: 'allow', reason: '', decidedBy: 'inline-then-worker' });
    expect(shown(o.calls)).toEqual(shown(daemonCalls));

    const text = await runCli(['eval', wasm, '--bytes', '4Mi', '--target', 'requester', '--no-cap-sys-resource']);
    expect(text.stdout).toMatch(/^decided {3}by a worker, continuing the first run on the daemon's thread/m);
  });

  it('capgate test shows where each case was decided, and the continuation sees the first run', async () => {
    const scenario = join(dir, 'continued.yaml');
    writeFileSync(
      scenario,
      `host: { canRaiseHardLimit: false }
vms:
  - { uuid: ${UUID}, name: vm, id: 1, pids: [10] }
cases:
${[1, 2, 3]
  .map(
    (n) => `  - name: case ${n}
    request: { requesterPid: 10, bytes: 4Mi }
    expect:
      decision: allow
      calls:
        - { op: set-memlock, bytes: 4Mi, result: ok }
        - { op: set-memlock, bytes: 4198400, result: not-permitted }
`,
  )
  .join('')}`,
    );
    const r = await runCli(['test', wasm, scenario, '--json']);
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout) as { passed: number; failed: number; cases: Array<{ decidedBy: string }> };
    expect(result).toMatchObject({ passed: 3, failed: 0 });
    // As the daemon: the first run never fits the slice, so no case is decided inline; the 1st
    // continues in the worker, and the back-off may send later ones straight there (its exact
    // sequence is in test/simulator/speculative-path.test.ts, under a clock that does not move).
    expect(result.cases[0]!.decidedBy).toBe('inline-then-worker');
    for (const c of result.cases) expect(['inline-then-worker', 'worker']).toContain(c.decidedBy);
    expect(r.code).toBe(0);
  });
});
