// Builds the C example policies (guest-examples/c/<name>/policy.c + host-api/c runtime) into
// components, freestanding (no libc): any clang with the wasm32 target and wasm-ld (lld).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, type BuiltGuest, buildExamples } from './guest-build.ts';
import { componentize } from '../../runtime/packaging/componentize.ts';
import { languageDir, SDK_EXAMPLES, SDK_REPO_ROOT } from './prebuilt.ts';
import { runTool, ToolchainMissingError } from '../../runtime/packaging/toolchains/run-tool.ts';
import {
  C_FLAGS,
  C_STRIP_FLAGS,
  clangEnv,
  findCToolchain,
  type CToolchain,
} from '../../runtime/packaging/toolchains/c.ts';

export { C_FLAGS, findCToolchain, type CToolchain };
import type { BuiltExample, SourceRoot } from './rust.ts';

/** Compiles, links and componentizes one example; throws with clang's output on failure. */
export async function buildCExample(
  name: string,
  toolchain: CToolchain = findCToolchain(),
  { root = SDK_REPO_ROOT }: SourceRoot = {},
): Promise<BuiltExample> {
  const source = join(root, 'guest-examples', 'c', name, 'policy.c');
  if (!existsSync(source)) throw new Error(`no C example "${name}": ${source} does not exist`);
  const scratch = mkdtempSync(join(tmpdir(), 'capgate-c-build-'));
  try {
    const out = join(scratch, `${name}.core.wasm`);
    // Relative paths from the repo root plus the prefix map: nothing machine-specific in the output.
    // The committed examples are stripped release builds (a rebuild is compared byte for byte).
    const args = [
      ...C_FLAGS,
      ...C_STRIP_FLAGS,
      `-ffile-prefix-map=${root}=.`,
      '-I',
      'host-api/c',
      '-o',
      out,
      relative(root, source),
      'host-api/c/capgate_runtime.c',
    ];
    const run = runTool(toolchain.clang, args, { cwd: root, env: clangEnv() });
    if (!run.ok) throw new Error(`${toolchain.clang} failed for guest-examples/c/${name}:\n${run.stderr}${run.stdout}`);
    const core = new Uint8Array(readFileSync(out));
    return { core, component: await componentize(core) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** GuestBuilder for scripts/build-guests.ts: outputs in guest-examples/c/build/. */
export async function buildCGuests(options: BuildOptions = {}): Promise<BuiltGuest[]> {
  let toolchain: CToolchain;
  try {
    toolchain = findCToolchain();
  } catch (e) {
    if (!(e instanceof ToolchainMissingError)) throw e;
    console.warn(`c guests not built (the committed guest-examples/c/prebuilt/ stay in use): ${e.message}`);
    return [];
  }
  const sdkInputs = [
    join(SDK_REPO_ROOT, 'host-api', 'c'),
    join(SDK_REPO_ROOT, 'host-api', 'wit'),
    fileURLToPath(import.meta.url),
  ];
  return buildExamples(
    {
      language: 'c',
      names: SDK_EXAMPLES,
      outDir: join(languageDir('c'), 'build'),
      inputsOf: (name) => [join(languageDir('c'), name), ...sdkInputs],
      build: (name) => buildCExample(name, toolchain),
    },
    options,
  );
}
