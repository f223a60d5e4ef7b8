// `capgate build --lang assemblyscript|rust|c <dir>`: compile a policy project from source, then
// componentize. Function names are kept unless options.strip (traps are reported by name).
import { resolve } from 'node:path';
import { componentize } from '../componentize.ts';
import { stripCustomSections } from '../strip-custom-sections.ts';
import type { BuiltProject, CompiledProject } from './built-project.ts';
import { compileAssemblyScriptProject } from './compile-assemblyscript-project.ts';
import { compileCProject } from './compile-c-project.ts';
import { compileRustProject } from './compile-rust-project.ts';
import type { BuildOptions, SourceLanguage } from './layout.ts';

const COMPILERS: Record<SourceLanguage, (dir: string, options: BuildOptions) => CompiledProject> = {
  assemblyscript: compileAssemblyScriptProject,
  rust: compileRustProject,
  c: compileCProject,
};

/**
 * Throws ProjectBuildError (toolchain missing, not a project, compile failed) or
 * ComponentizeError (the module does not fit the world).
 */
export async function buildProject(
  lang: SourceLanguage,
  dir: string,
  options: BuildOptions = {},
): Promise<BuiltProject> {
  const compiled = COMPILERS[lang](resolve(dir), options);
  const core = options.strip ? stripCustomSections(compiled.core) : compiled.core;
  return { ...compiled, core, component: await componentize(core) };
}
