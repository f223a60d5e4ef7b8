// `npm run build:guests`: compiles the example policies of every SDK language into
// guest-examples/<language>/build/<name>.core.wasm and the componentized <name>.wasm.
// One builder per language; Rust and C builders plug into GUEST_BUILDERS the same way.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import asc from 'assemblyscript/asc';
import { PACKAGE_ROOT } from '../runtime/bootstrap/package-root.ts';
import { componentize } from '../runtime/packaging/componentize.ts';
import { ASC_FLAGS } from '../runtime/packaging/toolchains/assemblyscript.ts';
import { buildCGuests } from './build-guests/c.ts';
import { type BuildOptions, type BuiltGuest, buildExamples, type GuestBuilder } from './build-guests/guest-build.ts';
import { buildRustGuests } from './build-guests/rust.ts';

export const REPO_ROOT = PACKAGE_ROOT;
export const GUEST_EXAMPLES_DIR = join(REPO_ROOT, 'guest-examples');

export type { BuildOptions, BuiltGuest, GuestBuilder };
export { ASC_FLAGS };

/** Example directories (those with an index.ts) under guest-examples/assemblyscript/. */
export function assemblyScriptExamples(dir = join(GUEST_EXAMPLES_DIR, 'assemblyscript')): string[] {
  return readdirSync(dir)
    .filter((name) => name !== 'build' && statSync(join(dir, name)).isDirectory())
    .filter((name) => readdirSync(join(dir, name)).includes('index.ts'))
    .sort();
}

export interface CompileOptions {
  /** In-memory files by absolute path (e.g. a test's policy source); everything else is read from disk. */
  virtualFiles?: Record<string, string>;
  /** asc flags after ASC_FLAGS (e.g. --debug to keep function names). */
  extraFlags?: string[];
}

/** Compiles one AssemblyScript entry file into a core module (bytes), in process. */
export async function compileAssemblyScript(entry: string, options: CompileOptions = {}): Promise<Uint8Array> {
  let binary: Uint8Array | undefined;
  const stderr = asc.createMemoryStream();
  const virtual = options.virtualFiles ?? {};
  const { error } = await asc.main([entry, ...ASC_FLAGS, ...(options.extraFlags ?? []), '--outFile', 'out.wasm'], {
    stderr,
    readFile: (name, baseDir) => {
      const path = resolve(baseDir, name);
      if (Object.hasOwn(virtual, path)) return virtual[path] ?? null;
      return existsSync(path) ? readFileSync(path, 'utf8') : null;
    },
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm') && typeof contents !== 'string') binary = contents;
    },
  });
  if (error || !binary) {
    throw new Error(
      `asc failed for ${relative(REPO_ROOT, entry)}: ${error?.message ?? 'no output'}\n${stderr.toString()}`,
    );
  }
  return binary;
}

export async function buildAssemblyScriptGuests(options: BuildOptions = {}): Promise<BuiltGuest[]> {
  const langDir = join(GUEST_EXAMPLES_DIR, 'assemblyscript');
  const sharedInputs = [
    join(REPO_ROOT, 'host-api', 'assemblyscript'),
    join(REPO_ROOT, 'host-api', 'wit'),
    join(REPO_ROOT, 'runtime', 'packaging'),
    fileURLToPath(import.meta.url),
  ];
  return buildExamples(
    {
      language: 'assemblyscript',
      names: assemblyScriptExamples(langDir),
      outDir: join(langDir, 'build'),
      inputsOf: (name) => [join(langDir, name), ...sharedInputs],
      build: async (name) => {
        const core = await compileAssemblyScript(join(langDir, name, 'index.ts'));
        return { core, component: await componentize(core) };
      },
    },
    options,
  );
}

export const GUEST_BUILDERS: Record<string, GuestBuilder> = {
  assemblyscript: buildAssemblyScriptGuests,
  // Without the toolchain these build nothing and say what to install; the committed
  // guest-examples/{rust,c}/prebuilt/ components stay in use.
  rust: buildRustGuests,
  c: buildCGuests,
};

/** Runs the given languages' builders (all by default). */
export async function buildGuests(
  languages: string[] = Object.keys(GUEST_BUILDERS),
  options: BuildOptions = {},
): Promise<BuiltGuest[]> {
  const out: BuiltGuest[] = [];
  for (const lang of languages) {
    const builder = GUEST_BUILDERS[lang];
    if (!builder) throw new Error(`no guest builder for "${lang}"; known: ${Object.keys(GUEST_BUILDERS).join(', ')}`);
    out.push(...(await builder(options)));
  }
  return out;
}

export function formatBuilt(guests: BuiltGuest[]): string {
  return guests
    .map(
      (g) =>
        `${g.language}/${g.name}: ${relative(REPO_ROOT, g.corePath)} ${g.coreBytes} B, ${relative(REPO_ROOT, g.componentPath)} ${g.componentBytes} B${g.upToDate ? ' (up to date)' : ''}`,
    )
    .join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const languages = process.argv.slice(2);
  buildGuests(languages.length > 0 ? languages : undefined)
    .then((guests) => console.log(`built ${guests.length} guest(s):\n${formatBuilt(guests)}`))
    .catch((e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    });
}
