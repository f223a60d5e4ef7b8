// Every process a test starts goes through here, so none outlives its test, its test file or the
// worker that runs them:
// - each child gets its own process group and session (detached), and is registered;
// - after each test, the children the test started are killed; after the file, all of them
//   (setup.ts installs the hooks). A kill takes the child's process group and everything below it
//   in the process tree (a grandchild that made its own group too), then waits for the exit;
// - if the worker exits, or is stopped by a signal, its children are killed on the way out;
// - if the worker dies without running any code (SIGKILL), the kernel kills its direct children:
//   each is started through `setpriv --pdeathsig KILL`, which sets PR_SET_PDEATHSIG and then
//   execs the command in place (same pid, same argv once exec'd). Node cannot set it itself.
//   What those children started in turn is found by the run marker (run-marker.ts) at the end
//   of the run and fails it.
// Children that are Node agents (vm-agent.ts, vm-root.ts) use this module for their own children
// too: their registry is killed when the agent exits, and PDEATHSIG ties each to the agent.
import {
  spawn,
  spawnSync,
  type ChildProcess,
  type ChildProcessWithoutNullStreams,
  type StdioOptions,
} from 'node:child_process';
import { existsSync } from 'node:fs';
import { descendantsOf, environOf, processTable } from './proc-table.ts';
import { RUN_MARKER, tokensOf } from './run-marker.ts';

/** 'test': started while a test (or its beforeEach) ran, killed after it. 'file': killed after the file. */
export type ChildScope = 'test' | 'file';

interface Tracked {
  child: ChildProcess;
  /** Its pid, which is also its process group id (detached). */
  pid: number;
  scope: ChildScope;
  exited: Promise<void>;
  done: boolean;
}

const tracked = new Set<Tracked>();
let scope: ChildScope = 'file';

/** For setup.ts: children started from now on belong to the running test (true) or to the file. */
export function setTestScope(inTest: boolean): void {
  scope = inTest ? 'test' : 'file';
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** `setpriv --pdeathsig` works here (util-linux >= 2.33); without it children still die in the hooks. */
const pdeathsig =
  SETPRIV !== undefined && spawnSync(SETPRIV, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' }).status === 0;

export interface SpawnChildOptions {
  cwd?: string;
  /** The child's environment (default: this process's); the run marker is added to it either way. */
  env?: NodeJS.ProcessEnv;
  stdio?: StdioOptions;
  uid?: number;
  gid?: number;
  /** Run as this user and group with no supplementary groups (setpriv --reuid/--regid --clear-groups). */
  asUser?: { uid: number; gid: number };
  /**
   * Which after-hook kills it. Default: 'test' when started by a test (or its beforeEach), else
   * 'file'. 'file' for a child a test starts for the tests after it (a daemon one test restarts
   * and the next one asks).
   */
  scope?: ChildScope;
}

/** `env` with this process's run marker, so the child and everything it starts can be found. */
export function markedEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const marker = process.env[RUN_MARKER];
  return marker === undefined ? env : { ...env, [RUN_MARKER]: marker };
}

/**
 * The command line and environment that start `command args` through setpriv. The dynamic
 * loader's variables (LD_PRELOAD, say) must not reach setpriv itself, where a preloaded library
 * would run its constructors once more: they go to the command through env(1) instead.
 */
function wrapped(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  asUser: SpawnChildOptions['asUser'],
): { file: string; argv: string[]; env: NodeJS.ProcessEnv } {
  if (asUser === undefined && !pdeathsig) return { file: command, argv: [...args], env };
  if (SETPRIV === undefined)
    throw new Error('running a child as another user needs setpriv (util-linux), which is not installed');
  const user =
    asUser === undefined ? [] : ['--reuid', String(asUser.uid), '--regid', String(asUser.gid), '--clear-groups'];
  const loader = Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('LD_') && e[1] !== undefined);
  const viaEnv = loader.length === 0 ? [] : ['/usr/bin/env', ...loader.map(([k, v]) => `${k}=${v}`)];
  const rest = Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('LD_')));
  // setpriv applies the death signal after the credential change (which would clear it).
  return {
    file: SETPRIV,
    argv: [...(pdeathsig ? ['--pdeathsig', 'KILL'] : []), ...user, '--', ...viaEnv, command, ...args],
    env: rest,
  };
}

/**
 * Starts `command args` as a registered child in its own process group (see the file comment).
 * The returned ChildProcess is Node's own; `kill()` on it signals the child alone (e.g. a graceful
 * SIGTERM), the hooks kill its whole tree.
 */
export function spawnChild(
  command: string,
  args: readonly string[],
  options?: SpawnChildOptions & { stdio?: 'pipe' },
): ChildProcessWithoutNullStreams;
export function spawnChild(command: string, args: readonly string[], options: SpawnChildOptions): ChildProcess;
export function spawnChild(command: string, args: readonly string[], options: SpawnChildOptions = {}): ChildProcess {
  const { file, argv, env } = wrapped(command, args, markedEnv(options.env), options.asUser);
  const child = spawn(file, argv, {
    cwd: options.cwd,
    env,
    stdio: options.stdio ?? 'pipe',
    detached: true,
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  if (child.pid === undefined) return child; // 'error' follows (e.g. ENOENT); nothing to track
  const entry: Tracked = {
    child,
    pid: child.pid,
    scope: options.scope ?? scope,
    done: false,
    exited: Promise.resolve(),
  };
  entry.exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  }).then(() => void (entry.done = true));
  tracked.add(entry);
  installExitHook();
  return child;
}

/** A Node child running `module` with an IPC channel (like child_process.fork), registered like spawnChild's. */
export function forkChild(
  module: string,
  args: readonly string[],
  options: SpawnChildOptions & { execArgv: readonly string[] },
): ChildProcess {
  const { execArgv, ...rest } = options;
  return spawnChild(process.execPath, [...execArgv, module, ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    ...rest,
  });
}

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a registered child to its end and collects its output; `input` goes to its stdin. */
export function runChild(
  command: string,
  args: readonly string[],
  options: SpawnChildOptions & { input?: string } = {},
): Promise<ChildRun> {
  const { input, ...rest } = options;
  return new Promise((resolve, reject) => {
    const child = spawnChild(command, args, { ...rest, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.on('error', () => undefined); // a child that exits without reading its input
    child.stdin.end(input ?? '');
  });
}

/** The processes to kill for `victims`: live groups, and every process below a victim or a group member. */
function killTargets(victims: readonly Tracked[]): { groups: number[]; pids: Set<number> } {
  const table = processTable();
  const live = new Set(victims.filter((t) => !t.done).map((t) => t.pid));
  // A group whose leader has exited keeps its id only while members remain; once empty, the
  // number may name someone else's group, so members count only if they carry our marker.
  const dead = new Set(victims.filter((t) => t.done).map((t) => t.pid));
  const own = tokensOf(process.env[RUN_MARKER]).at(-1);
  const roots = table
    .filter(
      (p) =>
        live.has(p.pgid) ||
        live.has(p.pid) ||
        (dead.has(p.pgid) && own !== undefined && tokensOf(environOf(p.pid)?.get(RUN_MARKER)).includes(own)),
    )
    .map((p) => p.pid);
  const pids = descendantsOf(roots, table);
  pids.delete(process.pid);
  return { groups: [...live], pids };
}

function sigkill(target: number): void {
  try {
    process.kill(target, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * SIGKILLs the registered children (of the running test, or all) and everything below them,
 * and waits for them to exit. `budgetMs`: SIGKILL takes effect when a process leaves
 * uninterruptible sleep, e.g. an fsync on a loaded disk, which may take seconds.
 */
export async function killChildren(which: ChildScope | 'all' = 'all', budgetMs = 30_000): Promise<void> {
  const victims = [...tracked].filter((t) => which === 'all' || t.scope === which);
  if (victims.length === 0) return;
  const { groups, pids } = killTargets(victims);
  for (const g of groups) sigkill(-g);
  for (const p of pids) sigkill(p);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), budgetMs)));
  const result = await Promise.race([Promise.all(victims.map((t) => t.exited)), timeout]);
  clearTimeout(timer);
  for (const t of victims) tracked.delete(t);
  if (result === 'timeout') {
    const alive = victims.filter((t) => !t.done).map((t) => t.pid);
    throw new Error(`children ${alive.join(', ')} did not exit within ${budgetMs} ms of SIGKILL`);
  }
}

/** Synchronous last resort (process exit, fatal signals): SIGKILL every registered child's tree. */
export function killChildrenNow(): void {
  const victims = [...tracked];
  if (victims.length === 0) return;
  const { groups, pids } = killTargets(victims);
  for (const g of groups) sigkill(-g);
  for (const p of pids) sigkill(p);
  tracked.clear();
}

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killChildrenNow);
}
