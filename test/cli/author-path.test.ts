// A new author's first ten minutes, in each language, as real processes: `capgate init`, then
// `npm install && npm test` with nothing else done (capgate and asc come from the project's own
// devDependencies: node_modules/.bin dirs are taken off PATH, no npm link), a broken policy
// failing its scenario, `npm run push` to a real daemon, and a request from inside a VM that the
// pushed policy decides, seen in `capgate audit show`.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCToolchain } from '../../runtime/packaging/toolchains/c.ts';
import { findRustToolchain } from '../../runtime/packaging/toolchains/rust.ts';
import { VmShell } from './support/daemon.ts';
import { serveDaemonForFile } from '../support/served-daemon.ts';
import { REPO_ROOT, runCli, runProcess, type CliRun } from './support/run-cli.ts';

function missing(find: () => unknown, lang: string): string | null {
  try {
    find();
    return null;
  } catch (e) {
    const why = `skipping the ${lang} author path: ${(e as Error).message}`;
    console.warn(why);
    return why;
  }
}

interface Lang {
  lang: 'assemblyscript' | 'rust' | 'c';
  skip: string | null;
  policy: string;
  overCap: string;
  broken: string;
}

const LANGS: Lang[] = [
  {
    lang: 'assemblyscript',
    skip: null,
    policy: 'assembly/policy.ts',
    overCap: 'return deny("over-cap");',
    broken: 'return allow();',
  },
  {
    lang: 'rust',
    skip: missing(findRustToolchain, 'rust'),
    policy: 'src/lib.rs',
    overCap: 'return deny("over-cap");',
    broken: 'return allow();',
  },
  {
    lang: 'c',
    skip: missing(findCToolchain, 'c'),
    policy: 'src/policy.c',
    overCap: 'return capgate_deny("over-cap");',
    broken: 'return capgate_allow();',
  },
];

/** The environment of a person with node and npm: no npm script variables, no node_modules/.bin on PATH. */
function authorEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^npm_|^INIT_CWD$|^NODE_ENV$|^VITEST|^CAPGATE_/.test(k)) env[k] = v;
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => !d.includes('node_modules') && !existsSync(join(d, 'capgate')))
    .join(delimiter);
  env.NO_COLOR = '1';
  return env;
}

const lastLine = (s: string): string | undefined => s.trimEnd().split('\n').at(-1);

/** Every relative markdown link in the project's docs names a file or directory that exists. */
function deadLinks(project: string): string[] {
  const dead: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (entry === 'node_modules' || entry === 'target' || entry === 'build') continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.md')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)) {
          const target = m[1]!;
          if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
          if (!existsSync(resolve(dirname(path), target.split('#')[0]!)))
            dead.push(`${path.slice(project.length + 1)}: ${target}`);
        }
      }
    }
  };
  walk(project);
  return dead;
}

let dir: string;
const served = serveDaemonForFile();
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'capgate-author-'));
  env = authorEnv();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.each(LANGS)('a new author in $lang', (l) => {
  const name = `${l.lang}-cap`;
  let project: string;
  const run = (command: string, args: string[]): Promise<CliRun> => runProcess(command, args, { cwd: project, env });

  beforeAll(() => {
    project = join(dir, name);
  });

  it('capgate init writes a project whose docs link only to files it holds', async () => {
    const r = await runCli(['init', project, '--lang', l.lang]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/next:\n {2}cd .*\n {2}npm install\n {2}npm test\n$/);
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    expect(pkg.devDependencies.capgate).toBe(`file:${REPO_ROOT.replace(/\/$/, '')}`);
    if (l.lang === 'assemblyscript') expect(pkg.devDependencies.assemblyscript).toMatch(/^\^0\.\d+\.\d+$/);
    for (const f of [
      'capgate-sdk/README.md',
      'capgate-sdk/CONTRACT.md',
      'capgate-sdk/SCENARIO.md',
      'capgate-sdk/wit/policy.wit',
    ])
      expect(existsSync(join(project, f)), f).toBe(true);
    expect(deadLinks(project)).toEqual([]);
    // The SDK README's link to the contract lands on the contract, not on the project's README.
    expect(readFileSync(join(project, 'capgate-sdk/README.md'), 'utf8')).toContain('](CONTRACT.md)');
  });

  it.skipIf(l.skip !== null)(
    'npm install && npm test passes with nothing else done; a broken policy fails',
    { timeout: 600_000 },
    async () => {
      const install = await run('npm', ['install', '--no-audit', '--no-fund']);
      expect(install.stderr, install.stderr).not.toMatch(/ERR!/);
      expect(install.code).toBe(0);
      expect(existsSync(join(project, 'node_modules', '.bin', 'capgate'))).toBe(true);
      const test = await run('npm', ['test', '--silent']);
      expect(test.stderr, test.stderr).toBe('');
      expect(test.code).toBe(0);
      expect(test.stdout).toMatch(
        new RegExp(
          `wrote build/policy\\.wasm \\(\\d+ bytes, sha256 [0-9a-f]{16}…; ${l.lang} core module .*; function names kept\\)`,
        ),
      );
      expect(test.stdout).toMatch(/log info: memlock raised to 8Gi for VM db-vm/);
      expect(lastLine(test.stdout)).toBe('6 passed, 0 failed');

      const policy = join(project, l.policy);
      const source = readFileSync(policy, 'utf8');
      writeFileSync(policy, source.replace(l.overCap, l.broken));
      try {
        const broken = await run('npm', ['test', '--silent']);
        expect(broken.code).not.toBe(0);
        expect(broken.stdout).toMatch(/FAIL {2}over the VM's cap/);
        expect(lastLine(broken.stdout)).toBe('5 passed, 1 failed');
      } finally {
        writeFileSync(policy, source);
      }
    },
  );

  it.skipIf(l.skip !== null)(
    "npm run push uploads and activates it under the project's name; a VM's requests are decided by it",
    { timeout: 600_000 },
    async () => {
      const push = await run('npm', ['run', 'push', '--silent', '--', '--socket', served.daemon.adminSocket]);
      expect(push.code, push.stdout + push.stderr).toBe(0);
      expect(push.stdout).toMatch(
        new RegExp(`^pushed: ${name} rev 1 sha256 [0-9a-f]{16}…\\nactivated: set-memlock -> ${name} rev 1`, 'm'),
      );
      expect(push.stderr).toContain(`policy name ${name} (from package.json)`);

      const vm = new VmShell(served.daemon.requestSocket);
      const uuid = `6f1c2a8e-0000-4000-8000-00000000000${LANGS.indexOf(l) + 1}`;
      try {
        const reg = await runCli([
          'vm',
          'register',
          '--uuid',
          uuid,
          '--name',
          `${l.lang}-vm`,
          '--id',
          String(LANGS.indexOf(l) + 1),
          '--label',
          'memlock-max=16Gi',
          '--pid',
          String(vm.pid),
          '--socket',
          served.daemon.adminSocket,
        ]);
        expect(reg.code, reg.stderr).toBe(0);
        // Lowering needs no privilege: the kernel takes it, the limit really changes.
        const before = await vm.memlock();
        const lower = String(BigInt(before.hard) / 2n);
        const allowed = await vm.request(lower);
        expect(allowed.body).toMatchObject({ decision: 'allow' });
        expect(await vm.memlock()).toEqual({ soft: lower, hard: lower });
        const denied = await vm.request('32Gi');
        expect(denied.body).toMatchObject({ decision: 'deny', reason: 'over-cap' });

        const shown = await runCli(['audit', 'show', allowed.body.decisionId, '--socket', served.daemon.adminSocket]);
        expect(shown.code).toBe(0);
        expect(shown.stdout).toMatch(new RegExp(`^policy {7}${name} rev 1 `, 'm'));
        expect(shown.stdout).toMatch(new RegExp(`^logs {9}info: memlock raised to \\S+ for VM ${l.lang}-vm$`, 'm'));
        const over = await runCli(['audit', 'show', denied.body.decisionId, '--socket', served.daemon.adminSocket]);
        expect(over.stdout).toMatch(
          new RegExp(`^logs {9}warn: request exceeds the cap of VM ${l.lang}-vm: 16Gi$`, 'm'),
        );
      } finally {
        vm.close();
        await runCli(['vm', 'rm', uuid, '--socket', served.daemon.adminSocket]);
      }
    },
  );
});
