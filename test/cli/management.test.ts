// Every management command as a real process against a real daemon started by `capgate serve`.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { componentize } from '../../runtime/packaging/componentize.ts';
import { compileAssemblyScript } from '../../scripts/build-guests.ts';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { CAPGATE_BIN, REPO_ROOT, runCli } from './support/run-cli.ts';
import { spawnChild } from '../support/processes/children.ts';
import { ChildOutput } from '../support/wait.ts';
import { serveDaemonForFile } from '../support/served-daemon.ts';

const UUID = '3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b13';
let guests: ExampleGuests;
const served = serveDaemonForFile({ vm: true });
const decisions: Record<string, string> = {};

beforeAll(async () => {
  guests = await ensureExampleGuests();
});

const json = <T>(stdout: string): T => JSON.parse(stdout) as T;

describe('against a running daemon', () => {
  it('policy push --activate, ls, inspect', async () => {
    const push = await runCli([
      'policy',
      'push',
      guests.memlockCap,
      '--name',
      'memlock-cap',
      '--activate',
      'set-memlock',
      '--json',
      ...served.admin,
    ]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    const pushed = json<{
      created: boolean;
      revision: { revision: number; sha256: string };
      binding: { binding: { policy: string; revision: number } };
    }>(push.stdout);
    expect(pushed.created).toBe(true);
    expect(pushed.binding.binding).toMatchObject({ policy: 'memlock-cap', revision: 1 });

    const ls = await runCli(['policy', 'ls', ...served.admin]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^POLICY\s+REV\s+SHA256\s+SIZE\s+BOUND/m);
    expect(ls.stdout).toMatch(
      new RegExp(`^memlock-cap\\s+1\\s+${pushed.revision.sha256.slice(0, 12)}\\s+\\d+\\s+set-memlock`, 'm'),
    );

    const inspect = await runCli(['policy', 'inspect', 'memlock-cap', ...served.admin]);
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toContain(`sha256          ${pushed.revision.sha256}`);
    expect(inspect.stdout).toMatch(/imports .*capgate:policy\/host@1\.0\.0/);
    expect(inspect.stdout).toMatch(/export evaluate/);
  });

  it('vm register, ls', async () => {
    const reg = await runCli([
      'vm',
      'register',
      '--uuid',
      UUID,
      '--name',
      'db-vm',
      '--id',
      '7',
      '--label',
      'vfio=true',
      '--label',
      'memory-bytes=4294967296',
      '--pid',
      String(served.vm.pid),
      ...served.admin,
    ]);
    expect(reg.stderr).toBe('');
    expect(reg.code).toBe(0);
    expect(reg.stdout).toMatch(new RegExp(`registered VM db-vm \\(${UUID}\\) anchored at pid ${served.vm.pid}`));
    const ls = await runCli(['vm', 'ls', ...served.admin]);
    expect(ls.stdout).toMatch(
      new RegExp(`^${UUID}\\s+db-vm\\s+7\\s+pid ${served.vm.pid}\\s+vfio=true memory-bytes=4294967296$`, 'm'),
    );
    const twice = await runCli([
      'vm',
      'register',
      '--uuid',
      UUID,
      '--name',
      'db-vm',
      '--id',
      '7',
      '--pid',
      String(served.vm.pid),
      ...served.admin,
    ]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/the daemon refused/);
  });

  it('request set-memlock from inside the VM: allowed (the kernel limit changes), then denied', async () => {
    const before = await served.vm.memlock();
    const lower = String(BigInt(before.hard) / 2n);
    const allowed = await served.vm.request(lower);
    expect(allowed.body.decision).toBe('allow');
    expect(allowed.code).toBe(0);
    expect(await served.vm.memlock()).toEqual({ soft: lower, hard: lower });
    decisions.allowed = allowed.body.decisionId;

    const denied = await served.vm.request('16Gi');
    expect(denied).toMatchObject({ code: 1, body: { decision: 'deny', reason: 'over-cap' } });
    decisions.denied = denied.body.decisionId;

    // Not in any VM: the CLI run directly by the test.
    const stranger = await runCli([
      'request',
      'set-memlock',
      '--pid',
      String(served.vm.pid),
      '--bytes',
      '1Mi',
      '--socket',
      served.daemon.requestSocket,
    ]);
    expect(stranger.code).toBe(1);
    expect(stranger.stdout).toMatch(/^denied: unknown-requester/);
  });

  it('audit ls with filters, and tail', async () => {
    const all = await runCli(['audit', 'ls', '--vm', UUID, '--json', ...served.admin]);
    expect(all.code).toBe(0);
    const records = json<{ records: Array<{ decisionId: string; decision: string; reason: string }> }>(
      all.stdout,
    ).records;
    expect(records.map((r) => r.decisionId)).toEqual([decisions.denied, decisions.allowed]);

    const denies = await runCli(['audit', 'ls', '--vm', 'db-vm', '--decision', 'deny', ...served.admin]);
    expect(denies.stdout).toMatch(/^TIME\s+DECISION ID\s+VM/m);
    expect(denies.stdout).toContain(decisions.denied!.slice(-8));
    expect(denies.stdout).not.toContain(decisions.allowed!.slice(-8));
    expect(denies.stdout).toMatch(/db-vm .* 16Gi\s+deny\s+over-cap\s+memlock-cap@1/);

    const tail = await runCli(['audit', 'tail', '-n', '2', '--vm', UUID, '--json', ...served.admin]);
    expect(
      tail.stdout
        .trim()
        .split('\n')
        .map((l) => json<{ decisionId: string }>(l).decisionId),
    ).toEqual([decisions.allowed, decisions.denied]);
  });

  it('audit show: one decision in full with its log lines, by full id or by the tail audit ls shows', async () => {
    const full = await runCli(['audit', 'show', decisions.denied!, ...served.admin]);
    expect(full.stderr).toBe('');
    expect(full.code).toBe(0);
    expect(full.stdout).toMatch(new RegExp(`^decision id {2}${decisions.denied}$`, 'm'));
    expect(full.stdout).toMatch(
      new RegExp(`^vm {11}db-vm \\(${UUID}, id 7\\) {2}vfio=true memory-bytes=4294967296$`, 'm'),
    );
    expect(full.stdout).toMatch(new RegExp(`^request {6}set-memlock of pid ${served.vm.pid} to 16Gi$`, 'm'));
    expect(full.stdout).toMatch(/^policy {7}memlock-cap rev 1 \(sha256 [0-9a-f]{16}…\)$/m);
    expect(full.stdout).toMatch(/^reason {7}over-cap$/m);
    expect(full.stdout).toMatch(/^calls {8}query-vm-identity\(pid=\d+\) -> some$/m);
    expect(full.stdout).toMatch(/^logs {9}warn: request exceeds memory-bytes plus overhead/m);
    expect(full.stdout).toMatch(/^record {7}schema version 1, seq \d+$/m);

    const short = await runCli(['audit', 'show', `…${decisions.allowed!.slice(-8)}`, '--json', ...served.admin]);
    expect(short.code).toBe(0);
    const rec = json<{
      record: { decisionId: string; schemaVersion: number; logs: Array<{ level: string; message: string }> };
    }>(short.stdout).record;
    expect(rec.schemaVersion).toBe(1);
    expect(rec.decisionId).toBe(decisions.allowed);
    expect(rec.logs).toEqual([{ level: 'info', message: 'memlock raised' }]);

    const missing = await runCli(['audit', 'show', '00000000-0000-7000-8000-000000000000', ...served.admin]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no decision 00000000-0000-7000-8000-000000000000 in the audit log/);
    expect(missing.stderr).toMatch(/hint: list recent decisions with `capgate audit ls`/);
  });

  it('audit tail --follow prints new decisions as they happen', async () => {
    const follow = spawnChild(
      process.execPath,
      [
        CAPGATE_BIN,
        'audit',
        'tail',
        '--follow',
        '--json',
        '-n',
        '1',
        '--interval-ms',
        '200',
        '--vm',
        UUID,
        ...served.admin,
      ],
      { cwd: REPO_ROOT },
    );
    let out = '';
    follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const printed = new ChildOutput(follow);
    const exited = new Promise<number | null>((r) => follow.on('exit', (code) => r(code)));
    await printed.until(decisions.denied!, 'the last decision');
    const fresh = await served.vm.request('1Gi');
    await printed.until(fresh.body.decisionId, 'the new decision');
    follow.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(
      out
        .trim()
        .split('\n')
        .map((l) => json<{ decisionId: string }>(l).decisionId),
    ).toEqual([decisions.denied, fresh.body.decisionId]);
  });

  it('replays exported audit records against another policy and finds the changed decision', async () => {
    const exported = await runCli(['audit', 'ls', '--vm', UUID, '--json', ...served.admin]);
    const file = join(served.daemon.dir, 'audit.json');
    writeFileSync(file, exported.stdout);
    // vfio-only lets the vfio VM have 16Gi; memlock-cap had denied it over-cap.
    const r = await runCli(['test', guests.vfioOnly, '--from-audit', file, '--json']);
    expect(r.code).toBe(1);
    const report = json<{
      changes: Array<{ decisionId: string; old: { decision: string }; new: { decision: string } }>;
    }>(r.stdout);
    expect(report.changes).toContainEqual(
      expect.objectContaining({
        decisionId: decisions.denied,
        old: { decision: 'deny', reason: 'over-cap' },
        new: { decision: 'allow', reason: '' },
      }),
    );
    // The same policy replaying its own traffic changes nothing.
    const same = await runCli(['test', guests.memlockCap, '--from-audit', file]);
    expect(same.stdout.trim().split('\n').at(-1)).toMatch(/^\d+ unchanged, 0 changed$/);
    expect(same.code).toBe(0);
  });

  it('policy activate, rollback, rm', async () => {
    const push2 = await runCli([
      'policy',
      'push',
      guests.vfioOnly,
      '--name',
      'memlock-cap',
      '--description',
      'try vfio-only',
      ...served.admin,
    ]);
    expect(push2.code).toBe(0);
    expect(push2.stdout).toMatch(/^pushed: memlock-cap rev 2/);
    const act = await runCli(['policy', 'activate', 'memlock-cap', '--revision', '2', ...served.admin]);
    expect(act.stdout).toMatch(/^activated: set-memlock -> memlock-cap rev 2 .*\(was memlock-cap rev 1\)/);
    const back = await runCli(['policy', 'rollback', '--json', ...served.admin]);
    expect(back.code).toBe(0);
    expect(json<{ binding: { revision: number } }>(back.stdout).binding.revision).toBe(1);

    const bound = await runCli(['policy', 'rm', 'memlock-cap', '--revision', '1', ...served.admin]);
    expect(bound.code).toBe(1);
    expect(bound.stderr).toMatch(/the daemon refused/);
    // Hints name CLI commands that exist, never HTTP calls.
    expect(bound.stderr).toMatch(
      /hint: activate another revision first \(`capgate policy activate memlock-cap --revision <n>`\), or unbind it \(`capgate policy unbind`\)/,
    );

    const history = await runCli(['policy', 'history', ...served.admin]);
    expect(history.code).toBe(0);
    const rows = history.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^AT\s+ACTION\s+POLICY\s+SHA256\s+ROLLED BACK$/);
    // Newest first; the rollback marked rev 2's entry instead of adding one.
    expect(rows.slice(1).map((r) => r.split(/\s{2,}/).slice(1, 3))).toEqual([
      ['bind', 'memlock-cap rev 2'],
      ['bind', 'memlock-cap rev 1'],
    ]);
    expect(rows[1]).toMatch(/\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    expect(rows[2]).toMatch(/ -$/);
    const rm = await runCli(['policy', 'rm', 'memlock-cap', '--revision', '2', ...served.admin]);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toMatch(/^deleted memlock-cap rev 2/);
  });

  it('policy unbind: requests are denied no-policy; the history shows it', async () => {
    const r = await runCli(['policy', 'unbind', ...served.admin]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^unbound: set-memlock -> nothing \(requests are denied: no-policy\) \(was memlock-cap rev 1\)/,
    );
    const denied = await served.vm.request('1Mi');
    expect(denied.body).toMatchObject({ decision: 'deny', reason: 'no-policy' });
    const history = json<{ history: Array<{ action: string }> }>(
      (await runCli(['policy', 'history', '--json', ...served.admin])).stdout,
    ).history;
    expect(history[0]!.action).toBe('unbind');
    const back = await runCli(['policy', 'activate', 'memlock-cap', ...served.admin]);
    expect(back.code).toBe(0);
  });

  it("policy push takes the name from the project's package.json when --name is left out", async () => {
    const project = join(served.daemon.dir, 'named-project');
    mkdirSync(join(project, 'build'), { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'from-manifest', version: '0.1.0' }));
    copyFileSync(guests.vfioOnly, join(project, 'build', 'policy.wasm'));
    const r = await runCli(['policy', 'push', 'build/policy.wasm', ...served.admin], { cwd: project });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('policy name from-manifest (from package.json)\n');
    expect(r.stdout).toMatch(/^pushed: from-manifest rev 1/);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: '@scope/Not OK' }));
    const bad = await runCli(['policy', 'push', 'build/policy.wasm', ...served.admin], { cwd: project });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/the name "@scope\/Not OK" in package.json is not a policy name/);
    expect(bad.stderr).toMatch(/hint: pass --name <name>/);
  });

  it('a policy that traps: the audit record says why and names the function', async () => {
    const entry = join(REPO_ROOT, 'guest-examples/assemblyscript/__trapping__/index.ts');
    const source = `import { Decision, Request, allow, policy } from "../../../host-api/assemblyscript/index";
export * from "../../../host-api/assemblyscript/abi";
function decide(req: Request): Decision {
  if (req.bytes == 1) throw new Error("one byte is no limit");
  return allow();
}
policy(decide);
`;
    const wasm = join(served.daemon.dir, 'trapping.wasm');
    writeFileSync(
      wasm,
      await componentize(
        await compileAssemblyScript(entry, { virtualFiles: { [entry]: source }, extraFlags: ['--debug'] }),
      ),
    );
    expect(
      (await runCli(['policy', 'push', wasm, '--name', 'trapping', '--activate', 'set-memlock', ...served.admin])).code,
    ).toBe(0);
    try {
      const r = await served.vm.request('1');
      expect(r.body).toMatchObject({ decision: 'deny', reason: 'trap' });
      const shown = await runCli(['audit', 'show', r.body.decisionId, ...served.admin]);
      expect(shown.stdout).toMatch(
        /^error {8}trap: evaluate: unreachable, in \S*capgateAbort \(wasm function \d+\), called from \S*__trapping__\/index\/decide \(wasm function \d+\)$/m,
      );
      expect(shown.stdout).toMatch(/^logs {9}error: panic: one byte is no limit at \S*__trapping__\/index\.ts:4:\d+$/m);
    } finally {
      expect((await runCli(['policy', 'activate', 'memlock-cap', ...served.admin])).code).toBe(0);
    }
  });

  it('says so when a command reaches the other socket', async () => {
    const adminOnRequest = await runCli(['vm', 'ls', '--socket', served.daemon.requestSocket]);
    expect(adminOnRequest.code).toBe(2);
    expect(adminOnRequest.stderr).toContain(
      `error: ${served.daemon.requestSocket} is capgate's request socket, not its admin socket`,
    );
    expect(adminOnRequest.stderr).toContain(
      `hint: pass the admin socket: --socket ${served.daemon.adminSocket} (or set CAPGATE_ADMIN_SOCKET)`,
    );
    const requestOnAdmin = await runCli([
      'request',
      'set-memlock',
      '--pid',
      '1',
      '--bytes',
      '1Mi',
      '--socket',
      served.daemon.adminSocket,
      '--json',
    ]);
    expect(requestOnAdmin.code).toBe(2);
    expect(json<{ error: { kind: string; message: string; hint: string } }>(requestOnAdmin.stdout).error).toEqual({
      kind: 'wrong-socket',
      socket: 'admin',
      message: `${served.daemon.adminSocket} is capgate's admin socket, not its request socket`,
      hint: `pass the request socket: --socket ${served.daemon.requestSocket} (or set CAPGATE_REQUEST_SOCKET)`,
    });
  });

  it('vm rm', async () => {
    const rm = await runCli(['vm', 'rm', UUID, ...served.admin]);
    expect(rm.code).toBe(0);
    const ls = await runCli(['vm', 'ls', '--json', ...served.admin]);
    expect(json<{ vms: unknown[] }>(ls.stdout).vms).toEqual([]);
    const again = await runCli(['vm', 'rm', UUID, ...served.admin]);
    expect(again.code).toBe(2);
  });
});
