// The one way capgate starts a worker thread, so that every worker loads what the process that
// starts it loads. Compiled (what ships): the entry's compiled JavaScript beside the caller, run
// directly; nothing is transformed at run time. From TypeScript sources (tests, development): the
// entry is loaded through the development loader (register.mjs), which a worker does not inherit
// from every runner. The sources are never loaded by the compiled build (see SECURITY.md).
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { packagePath, RUNNING_COMPILED } from './package-root.ts';

/**
 * Starts a worker running `entry`, a module given as its TypeScript source beside the caller:
 * `startWorker(new URL('./worker-main.ts', import.meta.url), options)`. Compiled, the same URL
 * names the `.js` file tsc wrote in its place.
 */
export function startWorker(entry: URL, options: WorkerOptions = {}): Worker {
  if (entry.protocol !== 'file:' || !entry.pathname.endsWith('.ts'))
    throw new Error(`startWorker: the entry must be a .ts module URL, got ${entry.href}`);
  if (RUNNING_COMPILED) return new Worker(new URL(entry.href.replace(/\.ts$/, '.js')), options);
  const loader = pathToFileURL(packagePath('runtime', 'bootstrap', 'register.mjs')).href;
  // eval: a CommonJS script whose dynamic imports register the loader first, then load the entry.
  const boot = `import(${JSON.stringify(loader)}).then(() => import(${JSON.stringify(entry.href)}))`;
  return new Worker(boot, { ...options, eval: true });
}
