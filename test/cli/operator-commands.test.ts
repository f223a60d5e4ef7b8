// `capgate health`, `capgate --version` and `capgate completion bash|zsh`, as an operator, a probe
// or a shell runs them: real processes against a real daemon and against sockets that answer
// wrong, and the generated completion scripts run by bash (and zsh when installed).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_PACKAGE } from '../../runtime/contract/types.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { serve } from '../security/support/serve.ts';
import { REPO_ROOT, runCli } from './support/run-cli.ts';

const servers: http.Server[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  removeTempDirs();
});

/** An HTTP server on a Unix socket that answers every request with `answer` (or never, if null). */
async function fakeDaemon(answer: { status: number; body: string } | null): Promise<string> {
  const socket = path.join(tempDir('capgate-fake-'), 'request.sock');
  const server = http.createServer((_req, res) => {
    if (answer === null) return; // holds the request until the client gives up
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return socket;
}

describe('capgate health', () => {
  let up: { adminSocket: string; requestSocket: string; stop(): Promise<number | null> };

  beforeAll(async () => {
    const dir = tempDir('capgate-health-');
    const r = await serve(['--run-dir', path.join(dir, 'run'), '--state-dir', path.join(dir, 'state')]);
    if (r.kind !== 'serving') throw new Error(`capgate serve exited ${r.code}:\n${r.output}`);
    up = { adminSocket: r.adminSocket, requestSocket: r.requestSocket, stop: () => r.served.stop() };
  });

  it('exits 0 and prints a short status while the daemon serves, on the request socket and with --admin on the admin one', async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    const r = await runCli(['health', '--socket', up.requestSocket]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^ok: capgate ${version.replace(/\./g, '\\.')}, up \\d+ s\\n$`));
    const j = await runCli(['health', '--socket', up.requestSocket, '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ status: 'ok', version });
    const admin = await runCli(['health', '--admin', '--socket', up.adminSocket, '--json']);
    expect(admin.code, admin.stderr).toBe(0);
    // The admin socket's answer carries the detail.
    expect(JSON.parse(admin.stdout)).toMatchObject({ status: 'ok', detail: { policiesLoaded: 0 } });
  });

  it('exits 1 when a socket answers but not "ok", answers something that is not capgate, errs, or says nothing in time', async () => {
    const stopping = await fakeDaemon({
      status: 200,
      body: JSON.stringify({ status: 'shutting-down', version: '0.1.0', uptimeS: 9 }),
    });
    const r = await runCli(['health', '--socket', stopping]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^shutting-down: capgate 0\.1\.0/);

    const stranger = await fakeDaemon({ status: 200, body: '{"hello":"world"}' });
    const s = await runCli(['health', '--socket', stranger, '--json']);
    expect(s.code).toBe(1);
    expect(JSON.parse(s.stdout)).toMatchObject({ status: 'unexpected-answer', answer: { hello: 'world' } });

    const failing = await fakeDaemon({
      status: 503,
      body: JSON.stringify({ error: { code: 'overloaded', message: 'busy' } }),
    });
    expect((await runCli(['health', '--socket', failing])).code).toBe(1);

    const silent = await fakeDaemon(null);
    const t = await runCli(['health', '--socket', silent, '--timeout', '300']);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/did not answer in time/);
  });

  it('exits 3 once the daemon is gone, and 2 on bad arguments', async () => {
    expect(await up.stop()).toBe(0);
    const r = await runCli(['health', '--socket', up.requestSocket]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`no daemon at ${up.requestSocket}`);
    expect((await runCli(['health', '--timeout', 'soon'])).code).toBe(2);
  });

  it('documents its exit codes in its help', async () => {
    const r = await runCli(['health', '--help']);
    expect(r.stdout).toMatch(/Exit status:\n\s+0 .*ok.*\n\s+1 .*\n\s+3 .*no daemon.*\n\s+75 .*Retry-After/);
  });
});

describe('capgate --version', () => {
  it("prints the package's version and the contract version the daemon runs", async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const wit = /^package (capgate:policy@[0-9.]+);$/m.exec(
      fs.readFileSync(path.join(REPO_ROOT, 'host-api', 'wit', 'policy.wit'), 'utf8'),
    )?.[1];
    expect(wit).toBe(CONTRACT_PACKAGE);
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`capgate ${pkg.version}\ncontract ${wit} (host-api/wit/policy.wit)\n`);
    }
  });
});

describe('capgate completion', () => {
  const dir = (): string => tempDir('capgate-completion-');

  it('refuses a shell it does not know', async () => {
    const r = await runCli(['completion', 'fish']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bash, zsh/);
  });

  it('bash: the script parses, and completing words gives the command tree: subcommands, options, choices', async () => {
    const r = await runCli(['completion', 'bash']);
    expect(r.code).toBe(0);
    const file = path.join(dir(), 'capgate.bash');
    fs.writeFileSync(file, r.stdout);
    const syntax = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);

    // Each line: the words typed so far (the last one being completed) -> what bash offers.
    const cases: Array<[string[], string[]]> = [
      [
        ['capgate', ''],
        ['serve', 'policy', 'vm', 'request', 'audit', 'build', 'init', 'test', 'eval', 'health', 'completion'],
      ],
      [['capgate', 'po'], ['policy']],
      [
        ['capgate', 'policy', ''],
        ['push', 'ls', 'inspect', 'activate', 'unbind', 'history', 'rollback', 'rm', 'bundle'],
      ],
      [['capgate', 'policy', 'push', '--act'], ['--activate']],
      [['capgate', 'policy', 'push', 'x.wasm', '--activate', ''], ['set-memlock']],
      [
        ['capgate', 'init', 'p', '--lang', ''],
        ['assemblyscript', 'rust', 'c'],
      ],
      // An option's value is skipped when finding the command path.
      [
        ['capgate', 'health', '--socket', 'policy', '--'],
        ['--socket', '--json', '--admin', '--live', '--timeout', '--help'],
      ],
      [['capgate', 'request', 'set-memlock', '--pid', '3', '--by'], ['--bytes']],
      [
        ['capgate', 'completion', ''],
        ['bash', 'zsh'],
      ],
      [
        ['capgate', 'audit', ''],
        ['ls', 'show', 'tail'],
      ],
    ];
    const script = [
      `source "${file}"`,
      'complete -p capgate',
      't() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _capgate; echo "${COMPREPLY[*]}"; }',
      ...cases.map(([words]) => `t ${words.map((w) => `'${w}'`).join(' ')}`),
    ].join('\n');
    const run = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const [registered, ...lines] = run.stdout.trimEnd().split('\n');
    expect(registered).toBe('complete -o default -F _capgate capgate');
    expect(lines.map((l) => l.split(' ').filter(Boolean))).toEqual(cases.map(([, offered]) => offered));
  });

  it('zsh: the script parses (zsh -n) when zsh is installed', async () => {
    const r = await runCli(['completion', 'zsh']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('#compdef capgate');
    expect(r.stdout).toContain('bashcompinit');
    expect(r.stdout).toContain('complete -o default -F _capgate capgate');
    if (spawnSync('zsh', ['--version']).error !== undefined) {
      console.log('zsh is not installed here: the zsh script is not syntax-checked (its bash part is, above)');
      return;
    }
    const file = path.join(dir(), '_capgate');
    fs.writeFileSync(file, r.stdout);
    const syntax = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);
  });
});
