// Compiles an AssemblyScript policy project (assembly/policy.ts, the SDK in capgate-sdk/) with the
// project's own asc (its devDependencies: `npm install` puts it there) and the SDK's flags.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ASC_FLAGS, findProjectAsc } from '../toolchains/assemblyscript.ts';
import { runTool } from '../toolchains/run-tool.ts';
import type { CompiledProject } from './built-project.ts';
import { AS_ENTRY, type BuildOptions } from './layout.ts';
import { ProjectBuildError } from './project-build-error.ts';

function ascArgs(options: BuildOptions): string[] {
  // --debug is asc's switch for the name section; a capgate debug build also drops -O3 and --noAssert.
  if (options.debug) return ['--runtime', 'stub', '--use', 'abort=capgateAbort', '-O0', '--debug'];
  return options.strip ? [...ASC_FLAGS] : [...ASC_FLAGS, '--debug'];
}

export function compileAssemblyScriptProject(dir: string, options: BuildOptions = {}): CompiledProject {
  if (!existsSync(join(dir, AS_ENTRY))) {
    throw new ProjectBuildError(
      'not-a-project',
      `${dir} has no ${AS_ENTRY}`,
      'put your policy in assembly/policy.ts, or create a project with `capgate init <dir> --lang assemblyscript`',
    );
  }
  const asc = findProjectAsc(dir);
  if (asc === null) {
    throw new ProjectBuildError(
      'toolchain-missing',
      `no AssemblyScript compiler in ${dir}/node_modules`,
      `run \`npm install\` in ${dir}: the project's devDependencies carry the compiler`,
    );
  }
  const version = runTool(process.execPath, [asc, '--version'], { cwd: dir });
  const scratch = mkdtempSync(join(tmpdir(), 'capgate-as-project-'));
  try {
    const out = join(scratch, 'policy.core.wasm');
    const run = runTool(process.execPath, [asc, AS_ENTRY, ...ascArgs(options), '-o', out], { cwd: dir });
    if (!run.ok) {
      throw new ProjectBuildError(
        'compile-failed',
        `asc failed in ${dir}:\n${(run.stderr + run.stdout).trimEnd()}`,
        'fix the errors above, then build again',
      );
    }
    return {
      core: new Uint8Array(readFileSync(out)),
      toolchain: version.ok ? version.stdout.trim() : 'AssemblyScript',
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
