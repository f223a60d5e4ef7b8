// An HTTP/1.1 server on a Unix socket for one small JSON request per decision: net.Server plus
// a strict parser, instead of node:http, whose per-request stream machinery costs more than the
// decision itself. Same hardening as UnixHttpServer: socket mode set at creation, peer
// credentials read once per connection, header/request/keep-alive timeouts, and a body cap
// enforced before the body is read; and connection budgets per holder (connection-budget.ts), so
// that no one peer can take every connection.
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { encodeReply, fail } from '../reply.ts';
import { listenOnSocketFile, type SocketFileOptions } from '../socket-file.ts';
import type { HttpLimits } from '../unix-server.ts';
import { ConnectionBudget, type ConnectionClass } from './connection-budget.ts';
import { LeanConnection, type ConnectionContext, type RequestTurns } from './lean-connection.ts';
import type { LeanHandler } from './lean-request.ts';

export interface LeanServerOptions<P> extends SocketFileOptions {
  name: string;
  limits: HttpLimits;
  /** Larger bodies are refused with 413 from their Content-Length, unread. */
  maxBodyBytes: number;
  handler: LeanHandler<P>;
  /** Runs on every accepted connection; null refuses it (the connection is closed). */
  identify(socket: net.Socket): P | null;
  /** Who holds the connection, for the budgets. Default: every connection alike, up to limits.maxConnections. */
  classify?(peer: P): ConnectionClass;
  /** A fair queue for the main thread's per-request work, keyed by each connection's payer (its class's, else its holder). */
  turns?: RequestTurns;
  logger: Logger;
}

export class LeanHttpServer<P> {
  readonly server: net.Server;
  private readonly live = new Set<LeanConnection<P>>();
  private readonly context: ConnectionContext<P> & { closing: boolean };
  readonly budget: ConnectionBudget<LeanConnection<P>>;
  private readonly everyone: ConnectionClass;

  constructor(private readonly o: LeanServerOptions<P>) {
    this.context = {
      name: o.name,
      limits: o.limits,
      maxBodyBytes: o.maxBodyBytes,
      handler: o.handler,
      logger: o.logger,
      closing: false,
      ...(o.turns !== undefined ? { turns: o.turns } : {}),
    };
    // Half-open: a client may send its request and shut its side; it still gets the answer.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    // No net-level maxConnections: it would drop a newcomer before we could make room for it.
    this.budget = new ConnectionBudget(o.limits.maxConnections);
    this.everyone = {
      holder: 'all',
      limit: o.limits.maxConnections,
      keepAlive: true,
      mayEvict: true,
      describe: 'this peer',
    };
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
    let cls = this.everyone;
    try {
      cls = this.o.classify?.(peer) ?? this.everyone;
    } catch (err) {
      this.o.logger.warn({ err, channel: this.o.name }, 'classifying a connection failed; connection refused');
      socket.destroy();
      return;
    }
    // The accept and the identity were this payer's work (TurnQueue.noteWork).
    this.context.turns?.queue.noteWork(cls.payer ?? cls.holder);
    const admission = this.budget.admit(cls);
    if (!admission.ok) return this.refuse(socket, admission.message, admission.hint);
    const connection = new LeanConnection<P>(socket, peer, this.context, cls.keepAlive, cls.payer ?? cls.holder);
    this.live.add(connection);
    this.budget.add(connection, cls);
    socket.once('close', () => {
      this.live.delete(connection);
      this.budget.remove(connection);
    });
  }

  /**
   * Answers 503 without reading the request and closes at once: the answer is in the peer's
   * receive queue, so it can still read it, and a refused connection holds no descriptor here
   * (a flood of them must not exhaust the daemon's).
   */
  private refuse(socket: net.Socket, message: string, hint: string): void {
    this.o.logger.debug({ channel: this.o.name, message }, 'connection refused: over budget');
    socket.on('error', () => socket.destroy());
    socket.end(encodeReply(fail('overloaded', message, hint, { headers: { 'retry-after': '1' } }), true, 0), () =>
      socket.destroy(),
    );
  }
}
