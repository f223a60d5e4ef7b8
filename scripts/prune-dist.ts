// Run by `npm pack` (prepack), after the build: removes from dist/ every compiled file whose
// TypeScript source is gone (a module renamed or deleted since dist/ was first built). tsc -b
// never deletes its old outputs, and the package ships dist/runtime/ whole, so without this a
// stale module would ship beside the real one. Only such orphans are removed: a concurrent
// process running the build (the test suite) never loads them.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../runtime/bootstrap/package-root.ts';

const DIST = path.join(PACKAGE_ROOT, 'dist');

/** The source tsc compiled `file` (a path under dist/) from, or null for what tsc does not write. */
export function sourceOf(file: string): string | null {
  const rel = path.relative(DIST, file);
  if (!rel.endsWith('.js')) return null;
  return path.join(PACKAGE_ROOT, rel.replace(/\.js$/, '.ts'));
}

/** Compiled files under `dir` whose source no longer exists. */
export function orphans(dir = DIST): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...orphans(full));
    else if (entry.isFile()) {
      const source = sourceOf(full);
      if (source !== null && !fs.existsSync(source)) found.push(full);
    }
  }
  return found;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (!fs.existsSync(DIST)) {
    process.stderr.write(`prune-dist: ${DIST} does not exist; run \`npm run build\` first\n`);
    process.exit(1);
  }
  for (const file of orphans()) {
    fs.rmSync(file);
    process.stderr.write(`prune-dist: removed ${path.relative(PACKAGE_ROOT, file)} (its source is gone)\n`);
  }
}
