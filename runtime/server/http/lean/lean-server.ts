// An HTTP/1.1 server on a Unix socket for one small JSON request per decision: net.Server plus
// a strict parser, instead of node:http, whose per-request stream machinery costs more than the
// decision itself. Same hardening as UnixHttpServer: socket mode set at creation, peer
// credentials read once per connection, header/request/keep-alive timeouts, a bounded number of
// connections, and a body cap enforced before the body is read.
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { listenOnSocketFile, type SocketFileOptions } from '../socket-file.ts';
import type { HttpLimits } from '../unix-server.ts';
import { LeanConnection, type ConnectionContext } from './lean-connection.ts';
import type { LeanHandler } from './lean-request.ts';

export interface LeanServerOptions<P> extends SocketFileOptions {
  name: string;
  limits: HttpLimits;
  /** Larger bodies are refused with 413 from their Content-Length, unread. */
  maxBodyBytes: number;
  handler: LeanHandler<P>;
  /** Runs on every accepted connection; null refuses it (the connection is closed). */
  identify(socket: net.Socket): P | null;
  logger: Logger;
}

export class LeanHttpServer<P> {
  readonly server: net.Server;
  private readonly live = new Set<LeanConnection<P>>();
  private readonly context: ConnectionContext<P> & { closing: boolean };

  constructor(private readonly o: LeanServerOptions<P>) {
    this.context = { name: o.name, limits: o.limits, maxBodyBytes: o.maxBodyBytes, handler: o.handler, logger: o.logger, closing: false };
    // Half-open: a client may send its request and shut its side; it still gets the answer.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server.maxConnections = o.limits.maxConnections;
  }

  listen(): Promise<void> {
    return listenOnSocketFile(this.server, this.o);
  }

  get connections(): Promise<number> {
    return new Promise((resolve) => this.server.getConnections((_e, n) => resolve(n ?? 0)));
  }

  /** Stops accepting, lets in-flight requests finish, closes idle connections, force-closes after graceMs. */
  async close(graceMs: number): Promise<void> {
    this.context.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.live) c.closeIfIdle();
    const timer = setTimeout(() => {
      for (const c of this.live) c.socket.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    fs.rmSync(this.o.socketPath, { force: true });
  }

  private accept(socket: net.Socket): void {
    let peer: P | null = null;
    try {
      peer = this.o.identify(socket);
    } catch (err) {
      this.o.logger.warn({ err, channel: this.o.name }, 'reading peer credentials failed; connection refused');
    }
    if (peer === null || this.context.closing) {
      socket.destroy();
      return;
    }
    const connection = new LeanConnection<P>(socket, peer, this.context);
    this.live.add(connection);
    socket.once('close', () => this.live.delete(connection));
  }
}
