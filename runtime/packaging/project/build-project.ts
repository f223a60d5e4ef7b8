// `capgate build --lang rust|c <dir>`: compile a policy project from source, then componentize.
import { resolve } from 'node:path';
import { componentize } from '../componentize.ts';
import type { BuiltProject, CompiledProject } from './built-project.ts';
import { compileCProject } from './compile-c-project.ts';
import { compileRustProject } from './compile-rust-project.ts';
import type { SourceLanguage } from './layout.ts';

const COMPILERS: Record<SourceLanguage, (dir: string) => CompiledProject> = {
  rust: compileRustProject,
  c: compileCProject,
};

/**
 * Throws ProjectBuildError (toolchain missing, not a project, compile failed) or
 * ComponentizeError (the module does not fit the world).
 */
export async function buildProject(lang: SourceLanguage, dir: string): Promise<BuiltProject> {
  const compiled = COMPILERS[lang](resolve(dir));
  return { ...compiled, component: await componentize(compiled.core) };
}
