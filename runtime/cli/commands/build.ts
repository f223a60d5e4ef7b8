// `capgate build <core.wasm> -o policy.wasm`: wrap a compiler's core module into a policy component.
import { readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { CliError, usageError } from '../cli-error.ts';
import { EXIT } from '../exit-codes.ts';
import { examples, withJson } from '../options.ts';
import { createOutput } from '../output/output.ts';

export function registerBuild(program: Command): void {
  const cmd = program
    .command('build')
    .description('componentize a core module against the capgate:policy@1.0.0 contract')
    .argument('<core.wasm>', 'core module from your compiler (asc, rustc, clang)')
    .requiredOption('-o, --output <policy.wasm>', 'where to write the component');
  withJson(cmd);
  examples(cmd, [
    'asc assembly/index.ts --runtime stub --use abort= -O3 --noAssert -o build/policy.core.wasm',
    'capgate build build/policy.core.wasm -o build/policy.wasm',
  ]);
  cmd.action(async (input: string, opts: { output: string; json: boolean }) => {
    const out = createOutput(opts.json);
    let core: Uint8Array;
    try {
      core = new Uint8Array(await readFile(input));
    } catch (e) {
      throw usageError(`cannot read ${input}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'pass the core .wasm your compiler wrote');
    }
    out.progress(`componentizing ${input}`);
    // jco's wasm-tools is large: load it only when building.
    const { ComponentizeError, componentize } = await import('../../packaging/componentize.ts');
    let component: Uint8Array;
    try {
      component = await componentize(core);
    } catch (e) {
      if (e instanceof ComponentizeError) {
        throw new CliError(`${input}: ${e.message}`, e.kind === 'does-not-fit-world' ? EXIT.failed : EXIT.usage, undefined, { kind: e.kind });
      }
      throw e;
    }
    try {
      await writeFile(opts.output, component);
    } catch (e) {
      throw usageError(`cannot write ${opts.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const sha256 = createHash('sha256').update(component).digest('hex');
    out.result({ output: opts.output, size: component.length, sha256 }, () => `wrote ${opts.output} (${component.length} bytes, sha256 ${sha256.slice(0, 16)}…)`);
  });
}
