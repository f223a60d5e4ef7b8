// Node module hooks (plain JS: they must not themselves need a TypeScript loader). Load the listed
// big, already-ESM packages straight from disk, ahead of tsx's loader, which otherwise spends
// 15-25 s transforming binaryen's 13 MB index.js on every process start (measured here: 1.2 s
// plain node vs 14-22 s under `node --import tsx`) and, on Node 24, more than a worker's 512 MiB
// heap. Two forms, because tsx uses either: asynchronous hooks (module.register, Node 20) or
// synchronous in-thread ones (module.registerHooks, Node 22.15+), which run before any
// asynchronous hook, so only a synchronous hook registered after tsx's runs ahead of it there.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

const PACKAGES = ['/node_modules/binaryen/'];

const skipped = (url) => url.startsWith('file://') && url.endsWith('.js') && PACKAGES.some((p) => url.includes(p));

export async function load(url, context, nextLoad) {
  if (skipped(url)) return { format: 'module', source: await readFile(new URL(url)), shortCircuit: true };
  return nextLoad(url, context);
}

export function loadSync(url, context, nextLoad) {
  if (skipped(url)) return { format: 'module', source: readFileSync(new URL(url)), shortCircuit: true };
  return nextLoad(url, context);
}
