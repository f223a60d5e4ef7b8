// `capgate init <dir> --lang assemblyscript|rust|c`: a policy project that builds with one command
// and passes its own scenario test out of the box.
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { Option } from 'commander';
import { PACKAGE_ROOT } from '../../bootstrap/package-root.ts';
import { PROJECT_SDK_DIR } from '../../packaging/project/layout.ts';
import { usageError } from '../cli-error.ts';
import { projectName } from '../init/project-name.ts';
import { writeProjectDocs } from '../init/project-docs.ts';
import { INIT_LANGUAGES, NEXT_STEPS, type InitLanguage } from '../init/project-template.ts';
import { TEMPLATES } from '../init/templates.ts';
import { examples, withJson } from '../options.ts';
import { createOutput } from '../output/output.ts';

// Build outputs a developer's checkout of host-api/ may hold; never part of the SDK copy.
const NOT_SDK = new Set(['target', 'build', 'node_modules']);

export function registerInit(program: Command): void {
  const cmd = program
    .command('init')
    .description('scaffold a policy project: SDK, starter policy, scenario, build and test scripts')
    .argument('<dir>', 'directory to create (must be absent or empty)')
    .addOption(new Option('--lang <language>', 'policy language').choices(INIT_LANGUAGES).default('assemblyscript'))
    .option('--name <name>', 'project name, also the policy name `npm run push` uploads (default: the directory name)')
    .option('--capgate <spec>', 'how package.json depends on capgate: an npm spec (default: file:<this capgate>)');
  withJson(cmd);
  examples(cmd, [
    'capgate init my-policy --lang assemblyscript    # then: cd my-policy && npm install && npm test',
    'capgate init my-policy --lang rust              # (building needs rustc + the wasm32 std)',
    'capgate init my-policy --lang c                 # (building needs clang + lld)',
  ]);
  cmd.action(async (dir: string, opts: { lang: InitLanguage; name?: string; capgate?: string; json: boolean }) => {
    const out = createOutput(opts.json);
    const template = TEMPLATES[opts.lang];
    const root = resolve(dir);
    const existing = await readdir(root).catch(() => [] as string[]);
    if (existing.length > 0)
      throw usageError(`${dir} exists and is not empty`, 'pick a new directory name, or empty it first');
    const name = projectName(opts.name ?? basename(root));
    await mkdir(root, { recursive: true });
    await cp(fileURLToPath(template.sdkSource), join(root, PROJECT_SDK_DIR), {
      recursive: true,
      filter: (src) => !NOT_SDK.has(basename(src)),
    });
    const capgate = PACKAGE_ROOT;
    const docs = await writeProjectDocs(capgate, root, opts.lang);
    // An absolute file: path: the project finds this capgate from wherever it is run.
    const files = await template.files({ name, capgate: opts.capgate ?? `file:${capgate}` });
    for (const [path, text] of files) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    const written = [...files.map(([p]) => p), `${PROJECT_SDK_DIR}/`, ...docs];
    out.result({ dir: root, lang: opts.lang, name, files: written, next: NEXT_STEPS }, () =>
      [
        `created ${opts.lang} policy project in ${dir}:`,
        ...written.map((f) => `  ${f}`),
        '',
        'next:',
        `  cd ${dir}`,
        ...NEXT_STEPS.map((s) => `  ${s}`),
      ].join('\n'),
    );
  });
}
