// Where capgate's package lives, found from this file whether it runs as compiled JavaScript
// (dist/runtime/bootstrap/package-root.js, what ships) or as TypeScript under a development
// transformer (runtime/bootstrap/package-root.ts, in tests): the files that ship beside the code
// (the WIT, the SDKs, the example policies) are found from here, never from the working directory.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when this process runs the compiled build (dist/), false under a development transformer. */
export const RUNNING_COMPILED = import.meta.url.endsWith('.js');

/** The package's root: the directory holding package.json, runtime/, host-api/, dist/. */
export const PACKAGE_ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  RUNNING_COMPILED ? '../../..' : '../..',
);

/** A path inside the package, e.g. packagePath('host-api', 'wit', 'policy.wit'). */
export function packagePath(...segments: string[]): string {
  return path.join(PACKAGE_ROOT, ...segments);
}
