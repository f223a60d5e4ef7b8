// The one way capgate starts a helper Node process (the compile launcher and its compile
// processes), mirroring worker-thread.ts: compiled (what ships), the entry's compiled JavaScript
// beside the caller runs directly with the node binary running this process; from TypeScript
// sources (tests, development), the entry is loaded through the development loader
// (register.mjs). A process rather than a thread when what it loads must leave nothing behind:
// everything it allocated, including what the allocator would otherwise keep, goes back to the
// system when it exits.
import { fork, spawn, type ChildProcess, type ForkOptions, type SpawnOptions } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { packagePath, RUNNING_COMPILED } from './package-root.ts';

/** The script and Node options that run `entry` (a .ts module URL) here: compiled, or through the loader. */
function nodeCommand(entry: URL, nodeOptions: string[], caller: string): { script: string; execArgv: string[] } {
  if (entry.protocol !== 'file:' || !entry.pathname.endsWith('.ts'))
    throw new Error(`${caller}: the entry must be a .ts module URL, got ${entry.href}`);
  if (RUNNING_COMPILED) return { script: fileURLToPath(entry.href.replace(/\.ts$/, '.js')), execArgv: nodeOptions };
  const loader = pathToFileURL(packagePath('runtime', 'bootstrap', 'register.mjs')).href;
  return { script: fileURLToPath(entry), execArgv: [...nodeOptions, '--import', loader] };
}

/**
 * Forks `node <entry>` with an IPC channel (advanced serialization: typed arrays cross as
 * such). `entry` is a module given as its TypeScript source beside the caller, as for
 * startWorker; `nodeOptions` are the child's only Node options (this process's are not passed on).
 */
export function startNodeProcess(entry: URL, nodeOptions: string[], options: ForkOptions = {}): ChildProcess {
  const { script, execArgv } = nodeCommand(entry, nodeOptions, 'startNodeProcess');
  return fork(script, [], { ...options, serialization: 'advanced', execArgv });
}

/**
 * Spawns `node <entry>` without an IPC channel: the caller speaks to it over the stdio it asks
 * for (a channel whose reads it bounds itself, which Node's IPC channel does not).
 */
export function spawnNodeProcess(entry: URL, nodeOptions: string[], options: SpawnOptions = {}): ChildProcess {
  const { script, execArgv } = nodeCommand(entry, nodeOptions, 'spawnNodeProcess');
  return spawn(process.execPath, [...execArgv, script], options);
}
