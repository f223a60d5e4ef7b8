// The service manager's end of sd_notify: a datagram Unix socket with SO_PASSCRED, so every
// message arrives with the sender's pid as the kernel saw it (systemd's NotifyAccess=main
// compares that pid with the service's main pid). Node has no datagram Unix sockets: socket,
// bind and recvmsg are called through koffi, recvmsg on koffi's worker thread (blocking, bounded
// by SO_RCVTIMEO), so the test waits on the message itself.
import { createRequire } from 'node:module';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PASSCRED = 16;
const SO_RCVTIMEO = 20;
const SCM_CREDENTIALS = 2;

interface KoffiFunction {
  (...args: unknown[]): unknown;
  async(...args: unknown[]): void;
}
interface Koffi {
  load(path: string): { func(prototype: string): KoffiFunction };
  struct(name: string, def: Record<string, string>): unknown;
  errno(): number;
}

const koffi = createRequire(import.meta.url)('koffi') as Koffi;
const libc = koffi.load('libc.so.6');
koffi.struct('test_notify_iovec', { base: 'void *', len: 'size_t' });
koffi.struct('test_notify_msghdr', {
  name: 'void *',
  namelen: 'uint32_t',
  iov: 'test_notify_iovec *',
  iovlen: 'size_t',
  control: 'void *',
  controllen: 'size_t',
  flags: 'int',
});
const socket = libc.func('int socket(int domain, int type, int protocol)');
const bind = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
const recvmsg = libc.func('long recvmsg(int fd, test_notify_msghdr *msg, int flags)');
const shutdown = libc.func('int shutdown(int fd, int how)');
const close = libc.func('int close(int fd)');
const SHUT_RDWR = 2;

export interface Notification {
  /** The datagram, e.g. "READY=1\nSTATUS=...". */
  state: string;
  /** The sender's pid, from SCM_CREDENTIALS. */
  pid: number;
}

export class NotifyListener {
  readonly #fd: number;
  #closed = false;

  /** Binds `address`: a path, or "@name" for an abstract socket (as $NOTIFY_SOCKET spells it). */
  constructor(
    readonly address: string,
    readonly timeoutS = 60,
  ) {
    const fd = Number(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (fd < 0) throw new Error(`socket: errno ${koffi.errno()}`);
    this.#fd = fd;
    const abstract = address.startsWith('@');
    const name = Buffer.from(abstract ? address.slice(1) : address);
    const sockaddr = Buffer.alloc(110);
    sockaddr.writeUInt16LE(AF_UNIX, 0);
    name.copy(sockaddr, abstract ? 3 : 2);
    const length = 2 + (abstract ? 1 + name.length : name.length + 1);
    if (Number(bind(fd, sockaddr, length)) < 0) throw new Error(`bind ${address}: errno ${koffi.errno()}`);
    const on = Buffer.alloc(4);
    on.writeInt32LE(1);
    if (Number(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, on, 4)) < 0)
      throw new Error(`SO_PASSCRED: errno ${koffi.errno()}`);
    const timeout = Buffer.alloc(16); // struct timeval
    timeout.writeBigInt64LE(BigInt(timeoutS), 0);
    if (Number(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16)) < 0)
      throw new Error(`SO_RCVTIMEO: errno ${koffi.errno()}`);
  }

  /** The next datagram; rejects when none arrives within the timeout. */
  next(): Promise<Notification> {
    const data = Buffer.alloc(4096);
    const control = Buffer.alloc(256);
    const msg = {
      name: null,
      namelen: 0,
      iov: [{ base: data, len: data.length }],
      iovlen: 1,
      control,
      controllen: control.length,
      flags: 0,
    };
    return new Promise((resolve, reject) => {
      recvmsg.async(this.#fd, msg, 0, (err: unknown, n: unknown) => {
        const size = Number(n);
        if (err !== null && err !== undefined) return reject(err as Error);
        if (size < 0 || this.#closed)
          return reject(
            new Error(
              `no notification on ${this.address} within ${this.timeoutS} s${this.#closed ? ' (listener closed)' : ''}`,
            ),
          );
        // struct cmsghdr { size_t len; int level; int type; } then struct ucred { pid, uid, gid }.
        if (control.readInt32LE(8) !== SOL_SOCKET || control.readInt32LE(12) !== SCM_CREDENTIALS)
          return reject(new Error('a notification without SCM_CREDENTIALS'));
        resolve({ state: data.subarray(0, size).toString('utf8'), pid: control.readInt32LE(16) });
      });
    });
  }

  /** Wakes a pending next() (shutdown makes a blocked recvmsg return), then closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    shutdown(this.#fd, SHUT_RDWR);
    close(this.#fd);
  }
}
