// Every command documents itself with examples; usage errors exit 2; an unbuilt copy says so.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CAPGATE_BIN, runCli, runProcess } from './support/run-cli.ts';
import { runChild } from '../support/processes/children.ts';
import { runInProcess } from './support/in-process.ts';

const COMMANDS = [
  ['serve'],
  ['policy', 'push'],
  ['policy', 'ls'],
  ['policy', 'inspect'],
  ['policy', 'activate'],
  ['policy', 'unbind'],
  ['policy', 'history'],
  ['policy', 'rollback'],
  ['policy', 'rm'],
  ['policy', 'bundle'],
  ['vm', 'register'],
  ['vm', 'ls'],
  ['vm', 'rm'],
  ['request', 'set-memlock'],
  ['audit', 'ls'],
  ['audit', 'show'],
  ['audit', 'tail'],
  ['build'],
  ['init'],
  ['test'],
  ['eval'],
];

describe('capgate --help', () => {
  it('lists the exit codes at the top level', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /Exit codes:\n {2}0 {2}ok.*\n {2}1 {2}denied or failed.*\n {2}2 {2}usage error.*\n {2}3 {2}daemon unreachable.*\n {2}75 try again later \(.*Retry-After.*EX_TEMPFAIL\)/,
    );
  });

  it('has examples and --json on every command', async () => {
    // In this process: twenty Node start-ups would take minutes on a loaded machine, and what is
    // checked is the help's text (the bin prints it: the test above, and `init --help | head` below).
    const runs = [];
    for (const c of COMMANDS) runs.push(await runInProcess([...c, '--help']));
    runs.forEach((r, i) => {
      const name = COMMANDS[i]!.join(' ');
      expect(r.code, name).toBe(0);
      expect(r.stdout, name).toMatch(/Examples:\n {2}\$ capgate |Examples:\n {2}\$ asc /);
      expect(r.stdout, name).toContain('--json');
    });
  });

  it('exits 2 without a command, printing the help on stderr', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^Usage: capgate \[options\] \[command\]/);
    const group = await runCli(['policy']);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/^Usage: capgate policy/);
    expect((await runCli(['help'])).code).toBe(0);
  });

  it('exits 2 on usage errors, with the reason', async () => {
    const unknown = await runCli(['policy', 'frobnicate']);
    expect(unknown.code).toBe(2);
    // The reasons in this process (main(), as the bin runs it): a Node start-up each would take seconds.
    const bytes = await runInProcess(['request', 'set-memlock', '--pid', '1', '--bytes', '8X']);
    expect(bytes.code).toBe(2);
    expect(bytes.stderr).toMatch(/"8X" has an unknown suffix "X": write a Kubernetes quantity: .*16Gi.*unlimited/);
    const ambiguous = await runInProcess(['request', 'set-memlock', '--pid', '1', '--bytes', '4GB']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(
      /"4GB" is ambiguous: write 4Gi \(binary, 4 × 2\^30\) or 4G \(decimal, 4 × 10\^9\)/,
    );
    const missing = await runInProcess(['vm', 'register', '--uuid', 'u', '--name', 'n', '--id', '1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/pass --pid <root pid> and\/or --cgroup <path>/);
  });
});

describe('no daemon', () => {
  it('exits 3 and says how to start one', async () => {
    const socket = '/nonexistent/capgate-admin.sock';
    const r = await runCli(['policy', 'ls', '--socket', socket]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`no daemon at ${socket}`);
    expect(r.stderr).toMatch(/capgate serve/);
    const j = await runCli(['vm', 'ls', '--socket', socket, '--json']);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toMatchObject({ exitCode: 3, error: { kind: 'daemon-unreachable' } });
    const req = await runCli(['request', 'set-memlock', '--pid', '1', '--bytes', '1Gi', '--socket', socket]);
    expect(req.code).toBe(3);
  });
});

describe('a reader that goes away', () => {
  it('`capgate init --help | head -1` ends quietly (EPIPE is not a crash)', async () => {
    const r = await runChild('sh', ['-c', `"${process.execPath}" "${CAPGATE_BIN}" init --help | head -1`]);
    expect(r.stdout.split('\n')[0]).toContain('Usage: capgate init');
    expect(r.stderr).not.toContain('EPIPE');
  });
});

describe('an unbuilt copy', () => {
  it('says that it was not built and how to build it, instead of a module-not-found stack', async () => {
    const root = mkdtempSync(join(tmpdir(), 'capgate-unbuilt-'));
    try {
      mkdirSync(join(root, 'runtime', 'cli'), { recursive: true });
      copyFileSync(CAPGATE_BIN, join(root, 'runtime', 'cli', 'capgate.mjs'));
      const r = await runProcess(process.execPath, [join(root, 'runtime', 'cli', 'capgate.mjs'), '--version'], {
        cwd: root,
        env: { PATH: process.env.PATH },
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${join(root, 'dist', 'runtime', 'cli', 'main.js')} is missing`);
      expect(r.stderr).toContain('run `npm run build`');
      expect(r.stderr).not.toMatch(/at .*\(/); // no stack trace
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
