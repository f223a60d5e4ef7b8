// Where the daemon puts its sockets, and where clients look for them: one resolution for both,
// so `capgate serve` and every client command agree whatever uid runs them. Pure (node:path
// only): client commands import it without loading the daemon.
//
// Daemon: flag > config file > CAPGATE_* variable > built-in default.
// Client: --socket > CAPGATE_<KIND>_SOCKET > CAPGATE_RUN_DIR > the built-in run directories,
// the caller's own first (./.capgate/run, where a non-root daemon started here listens), then
// the system one (/run/capgate, where a root daemon listens).
import path from 'node:path';

export type SocketKind = 'admin' | 'request';

export const SYSTEM_RUN_DIR = '/run/capgate';
export const SYSTEM_STATE_DIR = '/var/lib/capgate';
export const RUN_DIR_VARIABLE = 'CAPGATE_RUN_DIR';
export const SOCKET_VARIABLE: Readonly<Record<SocketKind, string>> = {
  admin: 'CAPGATE_ADMIN_SOCKET',
  request: 'CAPGATE_REQUEST_SOCKET',
};
export const SOCKET_FILE: Readonly<Record<SocketKind, string>> = { admin: 'admin.sock', request: 'request.sock' };

export interface LocationEnvironment {
  uid: number;
  cwd: string;
  /** Environment variables (process.env); only the CAPGATE_* ones above are read. */
  vars?: Readonly<Record<string, string | undefined>>;
}

/** The built-in directories, before any variable: /run/capgate and /var/lib/capgate as root, ./.capgate/* otherwise. */
export function builtInDirs(env: Pick<LocationEnvironment, 'uid' | 'cwd'>): { runDir: string; stateDir: string } {
  if (env.uid === 0) return { runDir: SYSTEM_RUN_DIR, stateDir: SYSTEM_STATE_DIR };
  return { runDir: path.join(env.cwd, '.capgate', 'run'), stateDir: path.join(env.cwd, '.capgate', 'state') };
}

function variable(env: LocationEnvironment, name: string): string | undefined {
  const v = env.vars?.[name];
  return v === undefined || v === '' ? undefined : path.resolve(env.cwd, v);
}

/** The daemon's run directory when neither a flag nor the config file sets one. */
export function defaultRunDir(env: LocationEnvironment): string {
  return variable(env, RUN_DIR_VARIABLE) ?? builtInDirs(env).runDir;
}

/** The daemon's socket path when neither a flag nor the config file sets one (CAPGATE_<KIND>_SOCKET). */
export function socketFromEnvironment(kind: SocketKind, env: LocationEnvironment): string | undefined {
  return variable(env, SOCKET_VARIABLE[kind]);
}

export interface SocketCandidate {
  path: string;
  /** Why this path: "--socket", a variable's name, or "default". */
  from: string;
}

/** Where a client looks for the daemon's socket, in order. One entry when anything names it. */
export function socketCandidates(kind: SocketKind, env: LocationEnvironment, flag?: string): SocketCandidate[] {
  if (flag !== undefined) return [{ path: path.resolve(env.cwd, flag), from: '--socket' }];
  const named = socketFromEnvironment(kind, env);
  if (named !== undefined) return [{ path: named, from: SOCKET_VARIABLE[kind] }];
  const runDir = variable(env, RUN_DIR_VARIABLE);
  if (runDir !== undefined) return [{ path: path.join(runDir, SOCKET_FILE[kind]), from: RUN_DIR_VARIABLE }];
  const dirs = env.uid === 0 ? [SYSTEM_RUN_DIR] : [builtInDirs(env).runDir, SYSTEM_RUN_DIR];
  return dirs.map((d) => ({ path: path.join(d, SOCKET_FILE[kind]), from: 'default' }));
}

export function currentLocationEnvironment(): LocationEnvironment {
  return { uid: process.getuid?.() ?? 0, cwd: process.cwd(), vars: process.env };
}
