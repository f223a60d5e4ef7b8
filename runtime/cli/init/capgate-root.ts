// The capgate package this command runs from: what a new project's devDependency points at.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest directory above this file whose package.json is capgate's (works from sources or a build folder). */
export function capgateRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'capgate') return dir;
      } catch {
        // not JSON: keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`no capgate package.json above ${from}`);
    dir = up;
  }
}
