// The one way capgate starts a helper Node process (today: the compile process), mirroring
// worker-thread.ts: compiled (what ships), the entry's compiled JavaScript beside the caller runs
// directly with the node binary running this process; from TypeScript sources (tests,
// development), the entry is loaded through the development loader (register.mjs). A process
// rather than a thread when what it loads must leave nothing behind: everything it allocated,
// including what the allocator would otherwise keep, goes back to the system when it exits.
import { fork, type ChildProcess, type ForkOptions } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { packagePath, RUNNING_COMPILED } from './package-root.ts';

/**
 * Forks `node <entry>` with an IPC channel (advanced serialization: typed arrays cross as
 * such). `entry` is a module given as its TypeScript source beside the caller, as for
 * startWorker; `nodeOptions` are the child's only Node options (this process's are not passed on).
 */
export function startNodeProcess(entry: URL, nodeOptions: string[], options: ForkOptions = {}): ChildProcess {
  if (entry.protocol !== 'file:' || !entry.pathname.endsWith('.ts'))
    throw new Error(`startNodeProcess: the entry must be a .ts module URL, got ${entry.href}`);
  const base: ForkOptions = { ...options, serialization: 'advanced' };
  if (RUNNING_COMPILED)
    return fork(fileURLToPath(entry.href.replace(/\.ts$/, '.js')), [], { ...base, execArgv: nodeOptions });
  const loader = pathToFileURL(packagePath('runtime', 'bootstrap', 'register.mjs')).href;
  return fork(fileURLToPath(entry), [], { ...base, execArgv: [...nodeOptions, '--import', loader] });
}
