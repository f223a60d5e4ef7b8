// `capgate policy push` without --name: the name of the project the policy was built in, from
// the nearest package.json above the .wasm (where `capgate init` writes it), else in the
// current directory.
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { POLICY_NAME_PATTERN, POLICY_NAME_RULE } from '../wire/index.ts';
import { usageError } from './cli-error.ts';

async function readName(manifest: string): Promise<string | undefined | null> {
  let text: string;
  try {
    text = await readFile(manifest, 'utf8');
  } catch {
    return null; // no manifest here
  }
  try {
    const name = (JSON.parse(text) as { name?: unknown }).name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

function* candidates(file: string): Generator<string> {
  let dir = dirname(resolve(file));
  for (;;) {
    yield join(dir, 'package.json');
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  yield join(process.cwd(), 'package.json');
}

export async function nameFromManifest(file: string): Promise<{ name: string; manifest: string }> {
  for (const manifest of candidates(file)) {
    const name = await readName(manifest);
    if (name === null) continue;
    const shown = relative(process.cwd(), manifest) || manifest;
    if (name === undefined) throw usageError(`${shown} has no "name" to name the policy by`, 'pass --name <name>');
    if (!POLICY_NAME_PATTERN.test(name))
      throw usageError(
        `the name "${name}" in ${shown} is not a policy name (${POLICY_NAME_RULE})`,
        'pass --name <name>',
      );
    return { name, manifest: shown };
  }
  throw usageError(
    'no policy name: pass --name <name>',
    'or run it in a project made by `capgate init`, whose package.json names the policy',
  );
}
