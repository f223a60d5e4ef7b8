// Compiles a freestanding C policy (src/*.c plus the SDK's runtime) to a core module, with the
// clang discovery and flags of ../toolchains/c.ts, shared with the example builds: whatever builds the examples builds this.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { C_DEBUG_FLAGS, C_FLAGS, C_STRIP_FLAGS, clangEnv, findCToolchain } from '../toolchains/c.ts';
import { runTool } from '../toolchains/run-tool.ts';
import type { CompiledProject } from './built-project.ts';
import { C_RUNTIME_FILE, C_SOURCE_DIR, PROJECT_SDK_DIR, type BuildOptions } from './layout.ts';
import { ProjectBuildError } from './project-build-error.ts';
import { findToolchainOrExplain } from './toolchain-missing.ts';

function sourcesOf(dir: string): string[] {
  const srcDir = join(dir, C_SOURCE_DIR);
  const sources = existsSync(srcDir)
    ? readdirSync(srcDir)
        .filter((f) => f.endsWith('.c'))
        .sort()
    : [];
  if (sources.length === 0) {
    throw new ProjectBuildError(
      'not-a-project',
      `${dir} has no C sources in ${C_SOURCE_DIR}/`,
      `put your policy in ${C_SOURCE_DIR}/policy.c, or create a project with \`capgate init <dir> --lang c\``,
    );
  }
  if (!existsSync(join(dir, PROJECT_SDK_DIR, C_RUNTIME_FILE))) {
    throw new ProjectBuildError(
      'not-a-project',
      `${dir} has no ${PROJECT_SDK_DIR}/${C_RUNTIME_FILE} (the SDK's canonical-ABI runtime)`,
      `copy the C SDK (capgate_policy.h, ${C_RUNTIME_FILE}) into ${PROJECT_SDK_DIR}/, or create a project with \`capgate init <dir> --lang c\``,
    );
  }
  return sources.map((f) => join(C_SOURCE_DIR, f));
}

/** clang --target=wasm32 over `src/*.c` and the SDK runtime in `dir`; returns the module's bytes. */
export function compileCProject(dir: string, options: BuildOptions = {}): CompiledProject {
  const sources = sourcesOf(dir);
  const toolchain = findToolchainOrExplain(findCToolchain);
  const scratch = mkdtempSync(join(tmpdir(), 'capgate-c-project-'));
  try {
    const out = join(scratch, 'policy.core.wasm');
    // Relative paths plus the prefix map: no machine-specific path in the module.
    // Later flags win: -O0 of a debug build overrides C_FLAGS' -O2.
    const mode = [...(options.debug ? C_DEBUG_FLAGS : []), ...(options.strip ? C_STRIP_FLAGS : [])];
    const args = [
      ...C_FLAGS,
      ...mode,
      `-ffile-prefix-map=${dir}=.`,
      '-I',
      PROJECT_SDK_DIR,
      '-o',
      out,
      ...sources,
      join(PROJECT_SDK_DIR, C_RUNTIME_FILE),
    ];
    const run = runTool(toolchain.clang, args, { cwd: dir, env: clangEnv() });
    if (!run.ok) {
      throw new ProjectBuildError(
        'compile-failed',
        `${toolchain.clang} failed in ${dir}:\n${(run.stderr + run.stdout).trimEnd()}`,
        'fix the errors above, then build again',
      );
    }
    return { core: new Uint8Array(readFileSync(out)), toolchain: toolchain.version };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
