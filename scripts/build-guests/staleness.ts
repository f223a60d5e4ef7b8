// "Is this output older than its inputs?" for incremental guest builds.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Newest modification time (ms) of the files under the given paths (build dirs excluded). */
export function newestMtime(paths: readonly string[]): number {
  let newest = 0;
  for (const p of paths) {
    const st = statSync(p);
    if (st.isDirectory()) {
      const children = readdirSync(p).filter((n) => n !== 'target' && n !== 'build' && n !== 'prebuilt');
      newest = Math.max(newest, newestMtime(children.map((n) => join(p, n))));
    } else newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

/** True when an output is missing or older than the newest input. */
export function isStale(outputs: readonly string[], inputs: readonly string[]): boolean {
  if (!outputs.every((o) => existsSync(o))) return true;
  return Math.min(...outputs.map((o) => statSync(o).mtimeMs)) <= newestMtime(inputs);
}
