// `capgate build` and `capgate init` as real processes; the scaffold builds and passes its own
// test with the asc from capgate's own node_modules (no network).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { CAPGATE_BIN, REPO_ROOT, runCli, runProcess, type CliRun } from './support/run-cli.ts';

let guests: ExampleGuests;
let dir: string;

beforeAll(async () => {
  guests = await ensureExampleGuests();
  dir = mkdtempSync(join(tmpdir(), 'capgate-build-init-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<CliRun> {
  return runProcess(command, args, { cwd, env });
}

describe('capgate build', () => {
  it('componentizes a core module into a policy that passes its scenario', async () => {
    const out = join(dir, 'memlock-cap.wasm');
    const r = await runCli(['build', guests.memlockCap.replace(/\.wasm$/, '.core.wasm'), '-o', out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { output: string; size: number; sha256: string };
    expect(j.output).toBe(out);
    const bytes = readFileSync(out);
    expect(j.size).toBe(bytes.length);
    expect([...bytes.subarray(0, 8)]).toEqual([0, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);
    const t = await runCli(['test', out, guests.memlockCapScenario]);
    expect(t.code).toBe(0);
    expect(t.stdout.trimEnd().split('\n').at(-1)).toBe('11 passed, 0 failed');
  });

  it('says what to do with input that is not a core module', async () => {
    const notWasm = join(dir, 'not.wasm');
    writeFileSync(notWasm, 'hello');
    const r = await runCli(['build', notWasm, '-o', join(dir, 'x.wasm')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a WebAssembly binary/);
    const component = await runCli(['build', guests.memlockCap, '-o', join(dir, 'y.wasm')]);
    expect(component.code).toBe(2);
    expect(component.stderr).toMatch(/already a WebAssembly component/);
    expect(existsSync(join(dir, 'y.wasm'))).toBe(false);
  });
});

describe('capgate init', () => {
  // Two full builds (asc, componentize, simulate) on a shared 2-core machine: allow minutes.
  it('scaffolds an AssemblyScript project whose `npm test` builds and passes', { timeout: 300_000 }, async () => {
    const project = join(dir, 'my-policy');
    const r = await runCli(['init', project, '--lang', 'assemblyscript']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/npm test/);
    for (const f of ['package.json', 'assembly/policy.ts', 'scenario.yaml', 'capgate-sdk/index.ts', 'capgate-sdk/abi.ts']) {
      expect(existsSync(join(project, f)), f).toBe(true);
    }
    // The project's scripts call `asc` and `capgate`: give them capgate's own, as an installed
    // capgate and `npm install` in the project would. No network is used.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(CAPGATE_BIN, join(bin, 'capgate'));
    const env = { ...process.env, PATH: `${bin}:${join(REPO_ROOT, 'node_modules', '.bin')}:${process.env.PATH}`, NO_COLOR: '1' };
    const test = await run('npm', ['test', '--silent'], project, env);
    expect(test.stderr).not.toMatch(/ERROR|error:/);
    expect(test.code).toBe(0);
    expect(test.stdout).toMatch(/wrote build\/policy\.wasm/);
    expect(test.stdout.trimEnd().split('\n').at(-1)).toBe('4 passed, 0 failed');

    // Its test is honest: break the policy and the same scenario fails.
    const policy = join(project, 'assembly', 'policy.ts');
    writeFileSync(policy, readFileSync(policy, 'utf8').replace('return deny("over-cap");', 'return allow();'));
    const broken = await run('npm', ['test', '--silent'], project, env);
    expect(broken.code).not.toBe(0);
    expect(broken.stdout).toMatch(/FAIL {2}over the VM's cap/);
    expect(broken.stdout.trimEnd().split('\n').at(-1)).toBe('3 passed, 1 failed');
  });

  it('refuses a non-empty directory', async () => {
    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'keep.txt'), 'x');
    const r = await runCli(['init', busy]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/exists and is not empty/);
  });
});
