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

/**
 * From sources, tsx keeps its cache in memory only (TSX_DISABLE_CACHE): these processes run
 * under a seccomp filter that refuses every write, and tsx creates its cache directory in $TMPDIR
 * at its first miss, so with a cold cache their first transform would throw (EPERM) and the
 * process die at start-up. What ships runs dist/ and never loads tsx.
 */
const SOURCE_ENV = { TSX_DISABLE_CACHE: '1' };

interface NodeCommand {
  script: string;
  execArgv: string[];
  /** Added to the child's environment. */
  env: Record<string, string>;
}

/** The script and Node options that run `entry` (a .ts module URL) here: compiled, or through the loader. */
function nodeCommand(entry: URL, nodeOptions: string[], caller: string): NodeCommand {
  if (entry.protocol !== 'file:' || !entry.pathname.endsWith('.ts'))
    throw new Error(`${caller}: the entry must be a .ts module URL, got ${entry.href}`);
  if (RUNNING_COMPILED)
    return { script: fileURLToPath(entry.href.replace(/\.ts$/, '.js')), execArgv: nodeOptions, env: {} };
  const loader = pathToFileURL(packagePath('runtime', 'bootstrap', 'register.mjs')).href;
  return { script: fileURLToPath(entry), execArgv: [...nodeOptions, '--import', loader], env: SOURCE_ENV };
}

/**
 * Forks `node <entry>` with an IPC channel (advanced serialization: typed arrays cross as
 * such). `entry` is a module given as its TypeScript source beside the caller, as for
 * startWorker; `nodeOptions` are the child's only Node options (this process's are not passed on).
 */
export function startNodeProcess(entry: URL, nodeOptions: string[], options: ForkOptions = {}): ChildProcess {
  const { script, execArgv, env } = nodeCommand(entry, nodeOptions, 'startNodeProcess');
  return fork(script, [], {
    ...options,
    env: { ...(options.env ?? process.env), ...env },
    serialization: 'advanced',
    execArgv,
  });
}

/**
 * Spawns `node <entry>` without an IPC channel: the caller speaks to it over the stdio it asks
 * for (a channel whose reads it bounds itself, which Node's IPC channel does not).
 */
export function spawnNodeProcess(entry: URL, nodeOptions: string[], options: SpawnOptions = {}): ChildProcess {
  const { script, execArgv, env } = nodeCommand(entry, nodeOptions, 'spawnNodeProcess');
  return spawn(process.execPath, [...execArgv, script], {
    ...options,
    env: { ...(options.env ?? process.env), ...env },
  });
}
