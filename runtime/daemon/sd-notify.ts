// Readiness for systemd (Type=notify): when the service manager sets $NOTIFY_SOCKET, the daemon
// sends "READY=1" once both sockets listen, and "STOPPING=1" when it starts to stop, as
// sd_notify(3) does: one datagram to that AF_UNIX socket. Node has no datagram Unix sockets, so
// socket(2) and sendto(2) are called through koffi, which the daemon already loads for prlimit.
// The message leaves from the daemon's own process, the service's main pid, so the unit can keep
// NotifyAccess=main.
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { errnoName } from '../os/errno.ts';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): sa_family_t (2 bytes) + sun_path[108]. */
const SOCKADDR_UN_BYTES = 110;
const SUN_PATH_BYTES = 108;

export class NotifyError extends Error {
  override readonly name = 'NotifyError';
}

/**
 * struct sockaddr_un for $NOTIFY_SOCKET and the length to pass with it: a path ("/run/systemd/notify")
 * or an abstract name ("@name", sent with a leading NUL and no terminator).
 */
export function notifyAddress(socket: string): { address: Buffer; length: number } {
  const abstract = socket.startsWith('@');
  if (!abstract && !socket.startsWith('/'))
    throw new NotifyError(
      `NOTIFY_SOCKET="${socket}" is neither an absolute path nor an abstract name (@...); capgate cannot report readiness to it`,
    );
  const name = Buffer.from(abstract ? socket.slice(1) : socket, 'utf8');
  // A path needs room for its NUL; an abstract name uses its first byte for the NUL prefix.
  if (name.length + 1 > SUN_PATH_BYTES || name.includes(0))
    throw new NotifyError(
      `NOTIFY_SOCKET="${socket}" does not fit a Unix socket address (at most ${SUN_PATH_BYTES - 1} bytes, no NUL)`,
    );
  const address = Buffer.alloc(SOCKADDR_UN_BYTES);
  address.writeUInt16LE(AF_UNIX, 0);
  name.copy(address, abstract ? 3 : 2);
  return { address, length: 2 + (abstract ? 1 + name.length : name.length + 1) };
}

type KoffiFunction = (...args: unknown[]) => unknown;
interface Koffi {
  load(path: string): { func(prototype: string): KoffiFunction };
  errno(): number;
}

let calls: { socket: KoffiFunction; sendto: KoffiFunction; close: KoffiFunction; errno: () => number } | undefined;

function bind(): NonNullable<typeof calls> {
  if (calls !== undefined) return calls;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  calls = {
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    sendto: lib.func('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
    close: lib.func('int close(int fd)'),
    errno: () => koffi.errno(),
  };
  return calls;
}

/**
 * Sends `state` (e.g. "READY=1") to the service manager when `socket` ($NOTIFY_SOCKET) is set;
 * false when it is not (not started by systemd, or not Type=notify). Throws NotifyError with
 * the errno when the datagram cannot be sent.
 */
export function notifyServiceManager(state: string, socket: string | undefined = process.env.NOTIFY_SOCKET): boolean {
  if (socket === undefined || socket === '') return false;
  const { address, length } = notifyAddress(socket);
  const c = bind();
  const fd = Number(c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd < 0)
    throw new NotifyError(`cannot create a datagram socket to reach NOTIFY_SOCKET=${socket} (${errnoName(c.errno())})`);
  try {
    const message = Buffer.from(state, 'utf8');
    const sent = Number(c.sendto(fd, message, message.length, MSG_NOSIGNAL, address, length));
    if (sent !== message.length)
      throw new NotifyError(
        `cannot send "${state.split('\n')[0]}" to NOTIFY_SOCKET=${socket} (${sent < 0 ? errnoName(c.errno()) : `${sent} of ${message.length} bytes sent`})`,
      );
    return true;
  } finally {
    c.close(fd);
  }
}

/** notifyServiceManager for the daemon: a failure is logged, never fatal (systemd's start timeout then says the rest). */
export function tellServiceManager(logger: Logger, state: string): void {
  try {
    if (notifyServiceManager(state)) logger.debug({ state }, 'told the service manager');
  } catch (err) {
    logger.error({ err }, `could not tell the service manager "${state.split('\n')[0]}"`);
  }
}

/**
 * READY=1, for the process entries to call once the daemon is started and its signal handlers
 * are installed: systemd starts the units ordered after capgate now, and may stop it from now on.
 */
export function notifyReady(daemon: { logger: Logger; adminSocket: string; requestSocket: string }): void {
  tellServiceManager(
    daemon.logger,
    `READY=1\nSTATUS=serving: admin ${daemon.adminSocket}, requests ${daemon.requestSocket}`,
  );
}
