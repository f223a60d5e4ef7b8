// The client commands an operator or libvirt runs often (`request`, `policy ls`, `audit ls`,
// `health`, `--version`) load none of the engine, the simulator, the daemon, the toolchains or
// their packages: the compiled CLI runs against a real daemon with a module hook
// (support/module-trace.mjs) that lists every module the process loaded.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { serveDaemonForFile } from '../support/served-daemon.ts';
import { CAPGATE_BIN, REPO_ROOT } from './support/run-cli.ts';

const TRACE = fileURLToPath(new URL('./support/module-trace.mjs', import.meta.url));

// Leaves the option definitions need (limits for help text, quantities for --bytes, eval's
// --target table, build's --lang list, where the sockets are): constants and parsers that
// import nothing of the forbidden folders themselves (any such import would show up below).
const ALLOWED_OUTSIDE_CLI = new Set([
  'dist/runtime/engine/limits.js',
  'dist/runtime/simulator/byte-size.js',
  'dist/runtime/simulator/one-shot.js',
  'dist/runtime/capabilities/simulated/world.js',
  'dist/runtime/packaging/project/layout.js',
  'dist/runtime/daemon/socket-locations.js',
]);
const FORBIDDEN_FOLDERS = /^dist\/runtime\/(engine|simulator|packaging|daemon|store|server|capabilities|identity)\//;
const ALLOWED_PACKAGES = new Set(['commander']);

const served = serveDaemonForFile();
let guests: ExampleGuests;
let work: string;

beforeAll(async () => {
  guests = await ensureExampleGuests();
  work = mkdtempSync(join(tmpdir(), 'capgate-trace-'));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Traced {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Loaded files, relative to the repository (node: builtins left out). */
  modules: string[];
}

let runs = 0;
function traced(args: string[]): Traced {
  const file = join(work, `trace-${runs++}.txt`);
  const r = spawnSync(process.execPath, ['--import', TRACE, CAPGATE_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', CAPGATE_MODULE_TRACE: file },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const urls = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('file:'));
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    modules: [...new Set(urls.map((u) => relative(REPO_ROOT, fileURLToPath(u))))].sort(),
  };
}

function packageOf(file: string): string | undefined {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
  return m?.[1];
}

function heavy(modules: string[]): string[] {
  return modules.filter((m) => {
    const pkg = packageOf(m);
    if (pkg !== undefined) return !ALLOWED_PACKAGES.has(pkg);
    return FORBIDDEN_FOLDERS.test(m) && !ALLOWED_OUTSIDE_CLI.has(m);
  });
}

describe('client commands load none of the engine, simulator, daemon or toolchains', () => {
  it('the trace sees what a command loads: `capgate eval` loads the engine, binaryen and jco', () => {
    // The control: the same hook on a command that does compile lists the heavy modules.
    const r = traced(['eval', guests.memlockCap, '--bytes', '1Mi', '--json']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ decision: expect.stringMatching(/^(allow|deny)$/) });
    expect(r.modules).toContain('dist/runtime/cli/main.js');
    expect(r.modules).toContain('dist/runtime/engine/engine.js');
    expect(r.modules.map(packageOf)).toEqual(expect.arrayContaining(['binaryen', '@bytecodealliance/jco-transpile']));
    expect(heavy(r.modules).length).toBeGreaterThan(20);
  });

  it.each([
    ['--version', () => ['--version'], 0],
    ['health', () => ['health', '--socket', served.daemon.requestSocket], 0],
    ['health --admin', () => ['health', '--admin', '--socket', served.daemon.adminSocket], 0],
    ['policy ls', () => ['policy', 'ls', '--socket', served.daemon.adminSocket], 0],
    ['audit ls', () => ['audit', 'ls', '--socket', served.daemon.adminSocket], 0],
    ['vm ls', () => ['vm', 'ls', '--socket', served.daemon.adminSocket], 0],
    // Nothing is bound: the daemon answers deny (exit 1) after a full round trip.
    [
      'request set-memlock',
      () => [
        'request',
        'set-memlock',
        '--pid',
        String(process.pid),
        '--bytes',
        '1Mi',
        '--socket',
        served.daemon.requestSocket,
        '--json',
      ],
      1,
    ],
    ['policy ls, no daemon', () => ['policy', 'ls', '--socket', join(work, 'nowhere.sock')], 3],
  ] as const)('%s', (_name, args, code) => {
    const r = traced(args());
    expect(r.code, r.stderr).toBe(code);
    expect(r.modules).toContain('dist/runtime/cli/main.js');
    expect(r.modules).toContain('node_modules/commander/lib/command.js');
    expect(heavy(r.modules)).toEqual([]);
  });
});
