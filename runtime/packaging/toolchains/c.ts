// Finds a clang + wasm-ld that can build freestanding wasm32 policies, or says what to install.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runTool, ToolchainMissingError } from './run-tool.ts';

export interface CToolchain {
  clang: string;
  /** First line of `clang --version`: recorded with the committed artifacts. */
  version: string;
}

/** Flags every C policy is built with (README.md of host-api/c documents the same line). */
export const C_FLAGS = [
  '--target=wasm32',
  '-O2',
  '-std=c11',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-ffreestanding',
  '-nostdlib',
  '-Wl,--no-entry',
] as const;

/** Without these the module keeps its function names (wasm-ld writes a name section), for trap reports. */
export const C_STRIP_FLAGS = ['-Wl,--strip-all'] as const;

/** A debug build: no optimizations, CAPGATE_DEBUG_ASSERT checks on. */
export const C_DEBUG_FLAGS = ['-O0', '-DCAPGATE_DEBUG=1'] as const;

/**
 * The environment clang runs in: PATH without any directory holding a wasm-opt. clang's wasm
 * driver runs the first wasm-opt on PATH after linking an optimized build (npm scripts put
 * binaryen's in node_modules/.bin), which strips the function names and makes the bytes depend
 * on where the build ran. Builds must not depend on that.
 */
export function clangEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const path = (env.PATH ?? '').split(delimiter).filter((dir) => dir !== '' && !existsSync(join(dir, 'wasm-opt')));
  return { ...env, PATH: path.join(delimiter) };
}

const CLANG_CANDIDATES = ['clang-14', 'clang-15', 'clang-16', 'clang-17', 'clang-18', 'clang-19', 'clang-20', 'clang'];

const INSTALL_HINT =
  'no clang with the wasm32 target and wasm-ld found (tried ' +
  CLANG_CANDIDATES.join(', ') +
  '). Install: apt-get install clang-14 lld-14 (any clang >= 14 with the matching lld works)';

/** Compiles and links an empty function: proves the target and wasm-ld are really there. */
function canLinkWasm(clang: string, scratch: string): boolean {
  const src = join(scratch, 'probe.c');
  writeFileSync(src, 'int probe(void) { return 0; }\n');
  return runTool(clang, ['--target=wasm32', '-nostdlib', '-Wl,--no-entry', '-o', join(scratch, 'probe.wasm'), src], {
    env: clangEnv(),
  }).ok;
}

/** The first usable clang; throws ToolchainMissingError saying what to install. */
export function findCToolchain(): CToolchain {
  const scratch = mkdtempSync(join(tmpdir(), 'capgate-clang-probe-'));
  try {
    for (const clang of CLANG_CANDIDATES) {
      const version = runTool(clang, ['--version'], { env: clangEnv() });
      if (!version.ok || !canLinkWasm(clang, scratch)) continue;
      return { clang, version: version.stdout.split('\n')[0]?.trim() ?? clang };
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  throw new ToolchainMissingError('c', INSTALL_HINT);
}
