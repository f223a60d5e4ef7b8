// `capgate build <core.wasm> -o policy.wasm`: wrap a compiler's core module into a policy component.
// `capgate build --lang assemblyscript|rust|c <dir> -o policy.wasm`: compile a policy project first.
// Function names stay in the module (a trap then names its function) unless --strip.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { SOURCE_LANGUAGES, type BuildOptions, type SourceLanguage } from '../../packaging/project/layout.ts';
import { CliError, usageError } from '../cli-error.ts';
import { EXIT } from '../exit-codes.ts';
import { examples, withJson } from '../options.ts';
import { createOutput, type Output } from '../output/output.ts';

export function registerBuild(program: Command): void {
  const cmd = program
    .command('build')
    .description(
      'componentize a core module against the capgate:policy@1.0.0 contract, or compile a Rust/C policy project (--lang) and componentize it',
    )
    .argument(
      '<core.wasm|dir>',
      'core module from your compiler (asc, rustc, clang), or with --lang a project directory',
    )
    .requiredOption('-o, --output <policy.wasm>', 'where to write the component')
    .addOption(
      new Option(
        '--lang <language>',
        'compile the project directory <dir> from source first (as made by `capgate init`)',
      ).choices(SOURCE_LANGUAGES),
    )
    .option(
      '--strip',
      'drop the function names (and every other custom section): smaller, but a trap names functions by index only',
      false,
    )
    .option(
      '--debug',
      'with --lang: a debug build (no optimizations, assertions and debug checks on, names kept); uses more fuel',
      false,
    );
  withJson(cmd);
  examples(cmd, [
    "capgate build --lang assemblyscript . -o build/policy.wasm   # the project's asc (npm install), then componentize",
    'capgate build --lang rust . -o build/policy.wasm             # cargo build --target wasm32-unknown-unknown, then componentize',
    'capgate build --lang c . -o build/policy.wasm                # clang --target=wasm32 src/*.c + SDK runtime, then componentize',
    'capgate build --lang rust . -o build/policy.wasm --debug     # overflow checks, debug_assert!',
    'capgate build build/policy.core.wasm -o build/policy.wasm --strip',
  ]);
  cmd.action(
    async (
      input: string,
      opts: { output: string; json: boolean; lang?: SourceLanguage; strip: boolean; debug: boolean },
    ) => {
      const out = createOutput(opts.json);
      if (opts.strip && opts.debug)
        throw usageError('--strip and --debug contradict each other: a debug build keeps its names');
      if (opts.lang !== undefined)
        return buildFromSource(opts.lang, input, opts.output, out, { strip: opts.strip, debug: opts.debug });
      if (opts.debug)
        throw usageError(
          '--debug applies to builds from source',
          'pass --lang assemblyscript|rust|c and the project directory; a core module is already compiled',
        );
      if ((await stat(input).catch(() => null))?.isDirectory() === true) {
        throw usageError(
          `${input} is a directory`,
          `to compile a policy project from source pass --lang ${SOURCE_LANGUAGES.join(' or --lang ')}; otherwise pass a core .wasm file`,
        );
      }
      const { hasNameSection, stripCustomSections } = await import('../../packaging/strip-custom-sections.ts');
      let core: Uint8Array;
      try {
        core = new Uint8Array(await readFile(input));
      } catch (e) {
        throw usageError(
          `cannot read ${input}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          'pass the core .wasm your compiler wrote',
        );
      }
      if (opts.strip && WebAssembly.validate(core)) core = stripCustomSections(core);
      out.progress(`componentizing ${input}`);
      // jco's wasm-tools is large: load it only when building.
      const { ComponentizeError, componentize } = await import('../../packaging/componentize.ts');
      let component: Uint8Array;
      try {
        component = await componentize(core);
      } catch (e) {
        if (e instanceof ComponentizeError) {
          throw new CliError(
            `${input}: ${e.message}`,
            e.kind === 'does-not-fit-world' ? EXIT.failed : EXIT.usage,
            undefined,
            { kind: e.kind },
          );
        }
        throw e;
      }
      await writeComponent(opts.output, component);
      const sha256 = createHash('sha256').update(component).digest('hex');
      const names = hasNameSection(core);
      out.result(
        { output: opts.output, size: component.length, sha256, names },
        () =>
          `wrote ${opts.output} (${component.length} bytes, sha256 ${sha256.slice(0, 16)}…${names ? '' : '; no function names'})`,
      );
    },
  );
}

async function writeComponent(output: string, component: Uint8Array): Promise<void> {
  try {
    await mkdir(dirname(output), { recursive: true });
    await writeFile(output, component);
  } catch (e) {
    throw usageError(`cannot write ${output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function buildFromSource(
  lang: SourceLanguage,
  dir: string,
  output: string,
  out: Output,
  options: BuildOptions,
): Promise<void> {
  if ((await stat(dir).catch(() => null))?.isDirectory() !== true) {
    throw usageError(
      `${dir} is not a directory`,
      `with --lang ${lang}, pass the project directory (e.g. \`.\`); create one with \`capgate init <dir> --lang ${lang}\``,
    );
  }
  out.progress(`compiling ${dir} (${lang}) and componentizing`);
  // The compilers' discovery and jco's wasm-tools are heavy: load them only when building.
  const { buildProject } = await import('../../packaging/project/build-project.ts');
  const { ProjectBuildError } = await import('../../packaging/project/project-build-error.ts');
  const { ComponentizeError } = await import('../../packaging/componentize.ts');
  const { hasNameSection } = await import('../../packaging/strip-custom-sections.ts');
  let built: Awaited<ReturnType<typeof buildProject>>;
  try {
    built = await buildProject(lang, dir, options);
  } catch (e) {
    if (e instanceof ProjectBuildError) {
      throw new CliError(e.message, e.kind === 'not-a-project' ? EXIT.usage : EXIT.failed, e.hint, { kind: e.kind });
    }
    if (e instanceof ComponentizeError)
      throw new CliError(`${dir}: ${e.message}`, EXIT.failed, undefined, { kind: e.kind });
    throw e;
  }
  await writeComponent(output, built.component);
  const sha256 = createHash('sha256').update(built.component).digest('hex');
  const names = hasNameSection(built.core);
  const mode = options.debug ? 'debug build' : names ? 'function names kept' : 'no function names';
  out.result(
    {
      output,
      size: built.component.length,
      sha256,
      lang,
      coreSize: built.core.length,
      toolchain: built.toolchain,
      debug: options.debug === true,
      names,
    },
    () =>
      `wrote ${output} (${built.component.length} bytes, sha256 ${sha256.slice(0, 16)}…; ${lang} core module ${built.core.length} bytes, ${built.toolchain}; ${mode})`,
  );
}
