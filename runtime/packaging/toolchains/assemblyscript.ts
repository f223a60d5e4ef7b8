// The AssemblyScript compiler flags every policy is built with, and where a project's own asc is.
// The compiler is the project's (its devDependencies), never capgate's: an author pins its version.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Flags the SDK needs: abort goes to the SDK's handler (no env.abort import), no GC runtime (the heap is a bump arena). */
export const ASC_FLAGS = ['--runtime', 'stub', '--use', 'abort=capgateAbort', '-O3', '--noAssert'] as const;

/** The bin script of the assemblyscript package that `dir` resolves, as Node would (node_modules upwards). */
export function findProjectAsc(dir: string): string | null {
  let at = resolve(dir);
  for (;;) {
    const asc = join(at, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
    if (existsSync(asc)) return asc;
    const up = dirname(at);
    if (up === at) return null;
    at = up;
  }
}
