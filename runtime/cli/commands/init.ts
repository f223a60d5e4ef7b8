// `capgate init <dir> --lang assemblyscript`: a policy project that builds and passes its own test.
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { Option } from 'commander';
import { usageError } from '../cli-error.ts';
import { examples, withJson } from '../options.ts';
import { createOutput } from '../output/output.ts';
import { GITIGNORE, POLICY_TS, SCENARIO_YAML, SDK_DIR, packageJson, readme } from '../init/assemblyscript-template.ts';

const SDK_SOURCE = fileURLToPath(new URL('../../../host-api/assemblyscript/', import.meta.url));
const ASC_PACKAGE_JSON = new URL('../../../node_modules/assemblyscript/package.json', import.meta.url);

async function ascVersion(): Promise<string> {
  try {
    return (JSON.parse(await readFile(ASC_PACKAGE_JSON, 'utf8')) as { version: string }).version;
  } catch {
    return '0.28.0';
  }
}

export function registerInit(program: Command): void {
  const cmd = program
    .command('init')
    .description('scaffold a policy project: SDK, starter policy, scenario, build and test scripts')
    .argument('<dir>', 'directory to create (must be absent or empty)')
    .addOption(new Option('--lang <language>', 'policy language').choices(['assemblyscript']).default('assemblyscript'))
    .option('--name <name>', 'project name (default: the directory name)');
  withJson(cmd);
  examples(cmd, ['capgate init my-policy --lang assemblyscript', 'cd my-policy && npm install && npm test']);
  cmd.action(async (dir: string, opts: { lang: string; name?: string; json: boolean }) => {
    const out = createOutput(opts.json);
    const root = resolve(dir);
    const existing = await readdir(root).catch(() => [] as string[]);
    if (existing.length > 0) throw usageError(`${dir} exists and is not empty`, 'pick a new directory name, or empty it first');
    const name = (opts.name ?? basename(root)).toLowerCase().replace(/[^a-z0-9._-]/g, '-');
    await mkdir(`${root}/assembly`, { recursive: true });
    await cp(SDK_SOURCE, `${root}/${SDK_DIR}`, { recursive: true });
    const files: Array<[string, string]> = [
      ['package.json', packageJson(name, await ascVersion())],
      ['assembly/policy.ts', POLICY_TS],
      ['scenario.yaml', SCENARIO_YAML],
      ['.gitignore', GITIGNORE],
      ['README.md', readme(name)],
    ];
    for (const [path, text] of files) await writeFile(`${root}/${path}`, text);
    const written = [...files.map(([p]) => p), `${SDK_DIR}/`];
    out.result({ dir: root, lang: opts.lang, files: written }, () =>
      [`created ${opts.lang} policy project in ${dir}:`, ...written.map((f) => `  ${f}`), '', 'next:', `  cd ${dir}`, '  npm install', '  npm test'].join('\n'),
    );
  });
}
