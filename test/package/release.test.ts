// The release artifact, end to end: `npm pack` holds only what runs, and a global install of the
// tarball into a fresh prefix (no repository, no dev dependencies) is a working capgate: serve,
// push, register, request and audit, each a real process of the installed copy.
//
// Network: the npm registry, for dependency metadata the npm cache does not hold yet (tarballs
// come from the cache when `npm ci` put them there). better-sqlite3 compiles from source when its
// prebuilt binary (GitHub) cannot be fetched, which needs python3, make and g++ (node-gyp).
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../cli/support/run-cli.ts';
import { killGroup } from '../security/support/nobody.ts';
import { serve } from '../security/support/serve.ts';
import { spawnChild } from '../support/processes/children.ts';
import { installGlobally, npmEnvironment, packRepository, run, type Packed } from './support/release.ts';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};

/** Tracked files under `dir` (what a release must carry of it, whole). */
function tracked(dir: string): string[] {
  const r = spawnSync('git', ['ls-files', '-z', '--', dir], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ls-files ${dir}: ${r.stderr}`);
  return r.stdout.split('\0').filter(Boolean);
}

/** Every TypeScript module of runtime/ (not declaration files): each must ship compiled. */
function runtimeModules(dir = path.join(REPO_ROOT, 'runtime')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return runtimeModules(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path.relative(REPO_ROOT, full)] : [];
  });
}

let base: string;
let packed: Packed;

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-release-'));
  packed = await packRepository(base);
}, 300_000);

afterAll(() => {
  if (base !== undefined) fs.rmSync(base, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('holds the compiled runtime, the bin, the SDKs and WIT, the examples, the C client, docs and deploy files, and nothing else', () => {
    const files = packed.files.map((f) => f.path).sort();
    console.log(
      `npm pack: ${path.basename(packed.tarball)}, ${files.length} files, ${(packed.size / 1024).toFixed(0)} kB (${(packed.unpackedSize / 1024).toFixed(0)} kB unpacked)`,
    );

    // Whole folders a release carries as they are tracked.
    for (const dir of ['host-api', 'guest-examples', 'clients/c', 'docs', 'deploy']) {
      const want = tracked(dir);
      expect(want.length, `${dir} has tracked files`).toBeGreaterThan(0);
      expect(
        files.filter((f) => f.startsWith(`${dir}/`)),
        `${dir}/ in the tarball`,
      ).toEqual(want.sort());
    }
    // Every runtime module compiled, and no compiled file without its source (a stale build).
    const compiled = files.filter((f) => f.startsWith('dist/'));
    expect(compiled.sort()).toEqual(
      runtimeModules()
        .map((m) => `dist/${m.replace(/\.ts$/, '.js')}`)
        .sort(),
    );

    const allowed = (f: string): boolean =>
      f.startsWith('dist/runtime/') ||
      ['host-api/', 'guest-examples/', 'clients/c/', 'docs/', 'deploy/'].some((d) => f.startsWith(d)) ||
      [
        'package.json',
        'README.md',
        'SECURITY.md',
        'runtime/cli/capgate.mjs',
        'runtime/client/API.md',
        'runtime/simulator/SCENARIO.md',
      ].includes(f);
    expect(files.filter((f) => !allowed(f))).toEqual([]);
    // Nothing of development: tests, TypeScript of the runtime, build state, dependencies, builds.
    expect(
      files.filter(
        (f) =>
          /(^|\/)(test|node_modules|target|build)\//.test(f) ||
          (f.startsWith('runtime/') && f.endsWith('.ts')) ||
          f.endsWith('.tsbuildinfo') ||
          f.startsWith('scripts/') ||
          f.startsWith('dist/test/') ||
          f.startsWith('dist/scripts/'),
      ),
    ).toEqual([]);
  });
});

describe('npm install -g of the tarball into a fresh prefix', () => {
  let prefix: string;
  let capgate: string;
  let installed: string;
  let work: string;

  beforeAll(async () => {
    prefix = path.join(base, 'prefix');
    work = path.join(base, 'work');
    fs.mkdirSync(work);
    // The installed copy must resolve its modules in its own tree, never in the repository's.
    for (let dir = base; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      if (fs.existsSync(path.join(dir, 'node_modules')))
        throw new Error(`${dir}/node_modules exists: the installed copy could load modules from it; remove it`);
    }
    const r = await installGlobally(packed.tarball, prefix);
    if (r.code !== 0) throw new Error(`npm install -g exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    capgate = path.join(prefix, 'bin', 'capgate');
    installed = path.join(prefix, 'lib', 'node_modules', 'capgate');
  }, 600_000);

  /** Runs the installed bin, as a shell of the operator's would (cwd outside the repository). */
  const cli = (args: string[]): ReturnType<typeof run> => run(capgate, args, { cwd: work, env: npmEnvironment() });

  it('installs the runtime dependencies and none of the dev dependencies', () => {
    const modules = path.join(installed, 'node_modules');
    for (const dev of [...Object.keys(pkg.devDependencies), 'esbuild', 'vite'])
      expect(fs.existsSync(path.join(modules, dev)), `${dev} installed`).toBe(false);
    // The native modules were built or fetched for this node.
    expect(fs.existsSync(path.join(modules, 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))).toBe(true);
    expect(fs.readlinkSync(capgate)).toContain('runtime/cli/capgate.mjs');
  });

  it('runs its commands from the installed copy: version, a policy test in the simulator, a project scaffold', async () => {
    const version = await cli(['--version']);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout).toMatch(
      new RegExp(`^capgate ${pkg.version.replace(/\./g, '\\.')}\ncontract capgate:policy@`),
    );

    // The shipped C build of memlock-cap passes the shipped scenario (engine, simulator, binaryen, jco).
    const test = await cli([
      'test',
      path.join(installed, 'guest-examples/c/prebuilt/memlock-cap.wasm'),
      path.join(installed, 'guest-examples/assemblyscript/memlock-cap/scenario.yaml'),
    ]);
    expect(test.code, test.stdout + test.stderr).toBe(0);

    const project = path.join(work, 'my-policy');
    const init = await cli(['init', project, '--lang', 'c']);
    expect(init.code, init.stderr).toBe(0);
    expect(fs.readFileSync(path.join(project, 'capgate-sdk', 'capgate_policy.h'), 'utf8')).toBe(
      fs.readFileSync(path.join(REPO_ROOT, 'host-api', 'c', 'capgate_policy.h'), 'utf8'),
    );
  });

  it('serves, takes a policy and a VM, decides a request from inside the VM, and audits it', async () => {
    const runDir = path.join(work, 'run');
    const stateDir = path.join(work, 'state');
    const up = await serve(['--run-dir', runDir, '--state-dir', stateDir], {
      command: [capgate],
      cwd: work,
      env: npmEnvironment(),
    });
    if (up.kind !== 'serving') throw new Error(`the installed capgate serve exited ${up.code}:\n${up.output}`);
    const admin = ['--socket', up.adminSocket, '--json'];

    const push = await cli([
      'policy',
      'push',
      path.join(installed, 'guest-examples/c/prebuilt/memlock-cap.wasm'),
      '--name',
      'memlock-cap',
      '--activate',
      'set-memlock',
      ...admin,
    ]);
    expect(push.code, push.stderr).toBe(0);

    // The VM: a shell that asks for its own memlock through the installed client, twice.
    const ask = (bytes: string): string =>
      `${capgate} request set-memlock --pid $$ --bytes ${bytes} --socket ${up.requestSocket} --json; echo "exit=$?"`;
    let vm: ChildProcess | undefined;
    try {
      vm = spawnChild(
        'bash',
        ['-c', `read go; ${ask('65536')}; grep 'Max locked memory' /proc/$$/limits; ${ask('2G')}`],
        { cwd: work, env: npmEnvironment() },
      );
      const uuid = randomUUID();
      const register = await cli([
        'vm',
        'register',
        '--uuid',
        uuid,
        '--name',
        'installed-vm',
        '--id',
        '1',
        '--label',
        `memory-bytes=${1024 ** 3}`,
        '--pid',
        String(vm.pid),
        ...admin,
      ]);
      expect(register.code, register.stderr).toBe(0);

      let output = '';
      vm.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      vm.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => vm!.once('exit', resolve));
      vm.stdin!.end('go\n');
      expect(await exited, output).toBe(0);

      const [first, second] = output.split(/exit=\d+\n/).map((s) => s.replace(/^Max locked memory.*\n/m, ''));
      const allowed = JSON.parse(first!) as { decision: string; decisionId: string };
      const denied = JSON.parse(second!) as { decision: string; reason: string; decisionId: string };
      expect(allowed.decision).toBe('allow');
      expect(output).toMatch(/exit=0\n/);
      // The kernel's limit, read by the VM itself after the allow.
      expect(output).toMatch(/Max locked memory\s+65536\s+65536\s+bytes/);
      expect(denied).toMatchObject({ decision: 'deny', reason: 'over-cap' });
      expect(output).toMatch(/exit=1\n/);

      const audit = await cli(['audit', 'ls', ...admin]);
      expect(audit.code, audit.stderr).toBe(0);
      const records = (
        JSON.parse(audit.stdout) as {
          records: Array<{
            decisionId: string;
            decision: string;
            reason: string;
            vm: { uuid: string } | null;
            policy: { name: string } | null;
          }>;
        }
      ).records;
      expect(records.map((r) => [r.decisionId, r.decision, r.vm?.uuid, r.policy?.name])).toEqual([
        [denied.decisionId, 'deny', uuid, 'memlock-cap'],
        [allowed.decisionId, 'allow', uuid, 'memlock-cap'],
      ]);
    } finally {
      await killGroup(vm);
      expect(await up.served.stop()).toBe(0);
    }
  });
});
