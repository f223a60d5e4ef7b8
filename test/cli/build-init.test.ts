// `capgate build` and `capgate init` as real processes. (A scaffold's npm install && npm test is
// test/cli/author-path.test.ts.)
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { compileAssemblyScript, GUEST_EXAMPLES_DIR } from '../../scripts/build-guests.ts';
import { runCli } from './support/run-cli.ts';

let guests: ExampleGuests;
let dir: string;

beforeAll(async () => {
  guests = await ensureExampleGuests();
  dir = mkdtempSync(join(tmpdir(), 'capgate-build-init-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

  it("keeps the core module's function names unless --strip; --debug needs a project", async () => {
    const core = join(dir, 'named.core.wasm');
    writeFileSync(
      core,
      await compileAssemblyScript(join(GUEST_EXAMPLES_DIR, 'assemblyscript', 'memlock-cap', 'index.ts'), {
        extraFlags: ['--debug'],
      }),
    );
    const kept = await runCli(['build', core, '-o', join(dir, 'named.wasm'), '--json']);
    expect(JSON.parse(kept.stdout)).toMatchObject({ names: true });
    const stripped = await runCli(['build', core, '-o', join(dir, 'stripped.wasm'), '--strip']);
    expect(stripped.stdout).toMatch(/; no function names\)$/m);
    expect(readFileSync(join(dir, 'stripped.wasm')).length).toBeLessThan(readFileSync(join(dir, 'named.wasm')).length);
    const debug = await runCli(['build', core, '-o', join(dir, 'never.wasm'), '--debug']);
    expect(debug.code).toBe(2);
    expect(debug.stderr).toMatch(/--debug applies to builds from source/);
  });

  it("builds an AssemblyScript project only with the project's own compiler, and says how to get it", async () => {
    const project = join(dir, 'as-without-install');
    expect((await runCli(['init', project, '--lang', 'assemblyscript'])).code).toBe(0);
    const r = await runCli(['build', '--lang', 'assemblyscript', project, '-o', join(project, 'build', 'policy.wasm')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: no AssemblyScript compiler in ${project}/node_modules`);
    expect(r.stderr).toContain(
      `hint: run \`npm install\` in ${project}: the project's devDependencies carry the compiler`,
    );
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
  it('writes the capgate dependency --capgate names', async () => {
    const project = join(dir, 'pinned');
    expect((await runCli(['init', project, '--lang', 'c', '--capgate', 'file:../capgate'])).code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    expect(pkg.devDependencies).toEqual({ capgate: 'file:../capgate' });
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
