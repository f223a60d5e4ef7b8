// `capgate init --lang rust|c` and `capgate build --lang rust|c` as real processes: what the
// scaffold holds, the compiler's diagnostics, --strip and --debug, and the refusals. (The author's
// whole path, npm install && npm test && npm run push, is test/cli/author-path.test.ts.)
// Without a toolchain the build tests skip and say what is missing.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCToolchain } from '../../scripts/build-guests/c.ts';
import { findRustToolchain } from '../../scripts/build-guests/rust.ts';
import { REPO_ROOT, runCli } from './support/run-cli.ts';

/** Why a language's toolchain is unusable here, or null when it is installed. */
function missingToolchain(find: () => unknown, lang: string): string | null {
  try {
    find();
    return null;
  } catch (e) {
    const why = `skipping the ${lang} build tests: ${(e as Error).message}`;
    console.warn(why);
    return why;
  }
}
const noRust = missingToolchain(findRustToolchain, 'rust');
const noClang = missingToolchain(findCToolchain, 'c');

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'capgate-init-rust-c-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface LanguageCase {
  lang: 'rust' | 'c';
  missing: string | null;
  /** A directory name that is not a valid crate/package name as is. */
  dirName: string;
  expectedName: string;
  files: string[];
  policy: string;
  /** The line that denies over-cap requests. */
  overCap: string;
  /** A debug-only assertion that fails, placed first in the policy function. */
  debugAssert: string;
  entry: string;
}

const CASES: LanguageCase[] = [
  {
    lang: 'rust',
    missing: noRust,
    dirName: '2nd.Rust Policy',
    expectedName: 'policy-2nd-rust-policy',
    files: [
      'package.json',
      'Cargo.toml',
      'src/lib.rs',
      'scenario.yaml',
      '.gitignore',
      'README.md',
      'capgate-sdk/Cargo.toml',
      'capgate-sdk/src/lib.rs',
      'capgate-sdk/src/abi.rs',
    ],
    policy: 'src/lib.rs',
    overCap: 'return deny("over-cap");',
    debugAssert: 'debug_assert!(req.bytes == 0, "only in debug builds");',
    entry: 'fn evaluate(req: &Request) -> Decision {',
  },
  {
    lang: 'c',
    missing: noClang,
    dirName: 'c-policy',
    expectedName: 'c-policy',
    files: [
      'package.json',
      'src/policy.c',
      'scenario.yaml',
      '.gitignore',
      'README.md',
      'capgate-sdk/capgate_policy.h',
      'capgate-sdk/capgate_runtime.c',
    ],
    policy: 'src/policy.c',
    overCap: 'return capgate_deny("over-cap");',
    debugAssert: 'CAPGATE_DEBUG_ASSERT(req->bytes == 0);',
    entry: 'capgate_decision capgate_evaluate(const capgate_request *req) {',
  },
];

describe.each(CASES)('capgate init --lang $lang', (c) => {
  let project: string;
  beforeAll(() => {
    project = join(dir, c.dirName);
  });

  it('scaffolds the SDK, a starter policy and a scenario', async () => {
    const r = await runCli(['init', project, '--lang', c.lang, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { lang: string; name: string; next: string[] };
    expect(j).toMatchObject({ lang: c.lang, name: c.expectedName, next: ['npm install', 'npm test'] });
    for (const f of c.files) expect(existsSync(join(project, f)), f).toBe(true);
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as {
      name: string;
      scripts: Record<string, string>;
    };
    expect(pkg.name).toBe(c.expectedName);
    expect(pkg.scripts.build).toBe(`capgate build --lang ${c.lang} . -o build/policy.wasm`);
    expect(pkg.scripts.test).toBe('npm run build && capgate test build/policy.wasm scenario.yaml');
    expect(readFileSync(join(project, c.policy), 'utf8')).toContain(c.overCap);
    // The SDK is the one in host-api/, copied whole.
    const sdkFile = c.lang === 'rust' ? 'src/abi.rs' : 'capgate_runtime.c';
    expect(readFileSync(join(project, 'capgate-sdk', sdkFile), 'utf8')).toBe(
      readFileSync(join(REPO_ROOT, 'host-api', c.lang, sdkFile), 'utf8'),
    );
  });

  // Real compiler and componentize, three times, on a shared 2-core machine: allow minutes.
  it.skipIf(c.missing !== null)(
    'keeps function names by default, drops them with --strip, and checks debug assertions only with --debug',
    { timeout: 300_000 },
    async () => {
      const policy = join(project, c.policy);
      const source = readFileSync(policy, 'utf8');
      writeFileSync(policy, source.replace(c.entry, `${c.entry}\n    ${c.debugAssert}`));
      try {
        const build = async (flags: string[]): Promise<{ names: boolean; debug: boolean; output: string }> => {
          const output = join(dir, `${c.lang}${flags.join('')}.wasm`);
          const r = await runCli(['build', '--lang', c.lang, project, '-o', output, '--json', ...flags]);
          expect(r.code, r.stdout + r.stderr).toBe(0);
          return { ...(JSON.parse(r.stdout) as { names: boolean; debug: boolean }), output };
        };
        const release = await build([]);
        const stripped = await build(['--strip']);
        const debug = await build(['--debug']);
        expect([release.names, stripped.names, debug.names, debug.debug]).toEqual([true, false, true, true]);
        const evalOf = async (
          wasm: string,
        ): Promise<{ decision: string; errorDetail?: string; logs: Array<{ message: string }> }> =>
          JSON.parse(
            (await runCli(['eval', wasm, '--bytes', '1Gi', '--label', 'memlock-max=16Gi', '--json'])).stdout,
          ) as { decision: string; errorDetail?: string; logs: Array<{ message: string }> };
        expect((await evalOf(release.output)).decision).toBe('allow');
        const trapped = await evalOf(debug.output);
        expect(trapped.decision).toBe('deny');
        expect(trapped.logs[0]!.message).toMatch(/^panic: /);
        expect(trapped.errorDetail).toMatch(/, in \S+ \(wasm function \d+\)/);
        const both = await runCli([
          'build',
          '--lang',
          c.lang,
          project,
          '-o',
          join(dir, 'never.wasm'),
          '--debug',
          '--strip',
        ]);
        expect(both.code).toBe(2);
        expect(both.stderr).toMatch(/--strip and --debug contradict each other/);
      } finally {
        writeFileSync(policy, source);
      }
    },
  );

  it.skipIf(c.missing !== null)(
    "shows the compiler's diagnostics when the sources do not compile",
    { timeout: 120_000 },
    async () => {
      const policy = join(project, c.policy);
      const source = readFileSync(policy, 'utf8');
      writeFileSync(policy, source.replace(c.overCap, `${c.overCap} this is not code`));
      try {
        const r = await runCli(['build', '--lang', c.lang, project, '-o', join(dir, `${c.lang}-bad.wasm`), '--json']);
        expect(r.code).toBe(1);
        const j = JSON.parse(r.stdout) as { error: { kind: string; message: string; hint: string } };
        expect(j.error.kind).toBe('compile-failed');
        expect(j.error.message).toContain(c.policy);
        expect(j.error.message).toMatch(/error/);
        expect(existsSync(join(dir, `${c.lang}-bad.wasm`))).toBe(false);
      } finally {
        writeFileSync(policy, source);
      }
    },
  );
});

describe('capgate build --lang', () => {
  it('says exactly what to install when clang is missing', async () => {
    const project = join(dir, 'no-clang');
    expect((await runCli(['init', project, '--lang', 'c'])).code).toBe(0);
    // A PATH with node only: no clang-* anywhere on it.
    const nodeOnly = join(dir, 'node-only');
    mkdirSync(nodeOnly);
    symlinkSync(process.execPath, join(nodeOnly, 'node'));
    const r = await runCli(['build', '--lang', 'c', project, '-o', join(project, 'build', 'policy.wasm')], {
      env: { PATH: nodeOnly },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no clang with the wasm32 target and wasm-ld found \(tried clang-14,/);
    expect(r.stderr).toMatch(/hint: Install: apt-get install clang-14 lld-14/);
    expect(existsSync(join(project, 'build'))).toBe(false);
  });

  it('refuses a directory without --lang, and a directory that is not a project of that language', async () => {
    const project = join(dir, 'c-for-refusals');
    expect((await runCli(['init', project, '--lang', 'c'])).code).toBe(0);
    const noLang = await runCli(['build', project, '-o', join(dir, 'x.wasm')]);
    expect(noLang.code).toBe(2);
    expect(noLang.stderr).toMatch(/is a directory/);
    expect(noLang.stderr).toMatch(/pass --lang assemblyscript or --lang rust or --lang c/);
    const wrongLang = await runCli(['build', '--lang', 'rust', project, '-o', join(dir, 'x.wasm'), '--json']);
    expect(wrongLang.code).toBe(2);
    expect(JSON.parse(wrongLang.stdout)).toMatchObject({
      error: { kind: 'not-a-project', hint: expect.stringMatching(/capgate init <dir> --lang rust/) },
    });
    const noSdk = join(dir, 'c-without-sdk');
    mkdirSync(join(noSdk, 'src'), { recursive: true });
    writeFileSync(join(noSdk, 'src', 'policy.c'), readFileSync(join(project, 'src', 'policy.c')));
    const r = await runCli(['build', '--lang', 'c', noSdk, '-o', join(dir, 'x.wasm')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has no capgate-sdk\/capgate_runtime\.c/);
    const missingDir = await runCli(['build', '--lang', 'c', join(dir, 'nowhere'), '-o', join(dir, 'x.wasm')]);
    expect(missingDir.code).toBe(2);
    expect(missingDir.stderr).toMatch(/is not a directory/);
    expect(existsSync(join(dir, 'x.wasm'))).toBe(false);
  });
});
