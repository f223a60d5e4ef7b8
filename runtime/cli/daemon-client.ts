// Opens the daemon clients for one command and always closes them, so the process can exit.
// Without --socket the socket is looked for where the daemon puts it (socket-locations.ts); when
// no daemon is found, the error lists every path tried and how to point at the right one.
// A call that reached the other capgate socket (admin command on the request socket, or the
// other way round) ends with a message that says so, and which socket to pass instead.
import { lstatSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  CapgateAdminClient,
  CapgateConnectionError,
  CapgateRequestClient,
  type TransportOptions,
  wrongSocket,
} from '../client/index.ts';
import {
  currentLocationEnvironment,
  RUN_DIR_VARIABLE,
  SOCKET_VARIABLE,
  socketCandidates,
  SYSTEM_RUN_DIR,
  type SocketCandidate,
  type SocketKind,
} from '../daemon/socket-locations.ts';
import { CliError } from './cli-error.ts';
import { EXIT } from './exit-codes.ts';

/** What is at a path, for choosing among candidates and for saying why one was no good. */
function probe(path: string): 'socket' | 'missing' | 'not a socket' | 'unreadable' {
  try {
    return lstatSync(path).isSocket() ? 'socket' : 'not a socket';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR'
      ? 'missing'
      : 'unreadable';
  }
}

/**
 * Why a default location may not be used, if it may not: a socket another user could have put
 * there (its directory not owned by the caller or root, or writable by others, or a symlink)
 * could answer in the daemon's name. Paths the caller named (--socket, variables) are its choice.
 */
function distrust(c: SocketCandidate, uid: number): string | undefined {
  if (c.from !== 'default') return undefined;
  const dir = dirname(c.path);
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch {
    return undefined; // nothing there: reported as missing
  }
  if (!st.isDirectory()) return `not used: ${dir} is not a directory (a symlink?)`;
  if (st.uid !== uid && st.uid !== 0) return `not used: ${dir} belongs to uid ${st.uid}, not to you or root`;
  if ((st.mode & 0o022) !== 0) return `not used: others may write to ${dir} (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

interface Located {
  /** The socket to use; undefined when no default location holds one that may be used. */
  path: string | undefined;
  tried: SocketCandidate[];
}

/** The flag's or a variable's path, or the first default location holding a socket that may be used. */
export function locateSocket(kind: SocketKind, flag: string | undefined): Located {
  const env = currentLocationEnvironment();
  const tried = socketCandidates(kind, env, flag);
  if (tried.length === 1 && tried[0]!.from !== 'default') return { path: tried[0]!.path, tried };
  const found = tried.find((c) => probe(c.path) === 'socket' && distrust(c, env.uid) === undefined);
  return { path: found?.path, tried };
}

function origin(c: SocketCandidate): string {
  if (c.from !== 'default') return c.from === '--socket' ? 'from --socket' : `from $${c.from}`;
  return c.path.startsWith(`${SYSTEM_RUN_DIR}/`)
    ? 'where a root daemon listens'
    : 'where `capgate serve` run by you in this directory listens';
}

/** The error listing every location tried, why, what was there, and what to do. */
function noDaemon(kind: SocketKind, located: Located): CliError {
  const uid = currentLocationEnvironment().uid;
  const tried = located.tried.map((c) => {
    const at = probe(c.path);
    const problem =
      distrust(c, uid) ??
      (c.path === located.path && at === 'socket'
        ? 'nothing listening (connection refused: a stale socket?)'
        : at === 'missing'
          ? 'no such file'
          : at);
    return { path: c.path, from: origin(c), problem };
  });
  const message =
    tried.length === 1
      ? `no daemon at ${tried[0]!.path} (${tried[0]!.from}): ${tried[0]!.problem}`
      : `no daemon found; tried:\n${tried.map((t) => `  ${t.path} (${t.from}): ${t.problem}`).join('\n')}`;
  return new CliError(
    message,
    EXIT.unreachable,
    `start the daemon with \`capgate serve\` (as root it listens in ${SYSTEM_RUN_DIR}), or say where it listens: --socket <path>, ${SOCKET_VARIABLE[kind]}=<path> or ${RUN_DIR_VARIABLE}=<dir>`,
    { kind: 'daemon-unreachable', tried },
  );
}

function explainNoDaemon(e: unknown, kind: SocketKind, located: Located & { path: string }): unknown {
  if (!(e instanceof CapgateConnectionError)) return e;
  // A socket that refused for another reason (EACCES: not ours to use) keeps its own message.
  if (probe(located.path) === 'socket' && e.errno !== 'ECONNREFUSED') return e;
  return noDaemon(kind, located);
}

function explainWrongSocket(e: unknown, socketPath: string, wanted: 'admin' | 'request'): unknown {
  const answered = wrongSocket(e);
  if (answered === undefined || answered === `${wanted}-socket`) return e;
  const other = wanted === 'admin' ? 'request' : 'admin';
  const env = wanted === 'admin' ? 'CAPGATE_ADMIN_SOCKET' : 'CAPGATE_REQUEST_SOCKET';
  return new CliError(
    `${socketPath} is capgate's ${other} socket, not its ${wanted} socket`,
    EXIT.usage,
    `pass the ${wanted} socket: --socket ${join(dirname(socketPath), `${wanted}.sock`)} (or set ${env})`,
    { kind: 'wrong-socket', socket: other },
  );
}

/** Runs fn with an admin client on --socket (flag) or, without one, on the socket found where the daemon puts it. */
export function withAdmin<T>(
  flag: string | undefined,
  fn: (c: CapgateAdminClient) => Promise<T>,
  timeoutMs?: number,
): Promise<T> {
  return withClient('admin', flag, (o) => new CapgateAdminClient(o), fn, timeoutMs);
}

/** As withAdmin, on the request socket. */
export function withRequester<T>(
  flag: string | undefined,
  fn: (c: CapgateRequestClient) => Promise<T>,
  timeoutMs?: number,
): Promise<T> {
  return withClient('request', flag, (o) => new CapgateRequestClient(o), fn, timeoutMs);
}

async function withClient<C extends { close(): void }, T>(
  kind: SocketKind,
  flag: string | undefined,
  connect: (options: TransportOptions) => C,
  fn: (c: C) => Promise<T>,
  timeoutMs: number | undefined,
): Promise<T> {
  const located = locateSocket(kind, flag);
  const socketPath = located.path;
  if (socketPath === undefined) throw noDaemon(kind, located);
  const client = connect({ socketPath, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  try {
    return await fn(client);
  } catch (e) {
    throw explainWrongSocket(explainNoDaemon(e, kind, { ...located, path: socketPath }), socketPath, kind);
  } finally {
    client.close();
  }
}
