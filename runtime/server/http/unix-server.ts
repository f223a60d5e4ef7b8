// The admin socket's HTTP/1.1 server on a Unix socket (node:http; the request socket has
// lean/lean-server.ts), with the hardening both channels share: body caps (in the handlers),
// header/request/keep-alive timeouts, a bounded connection count, the socket's mode set at
// creation (umask), and peer credentials read once per connection from the kernel. With a body
// budget, a new connection is read only once the budget is out of debt (connection-gate.ts).
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import type { Logger } from 'pino';
import { encodeReply, fail, send, type Reply } from './reply.ts';
import { discardBody } from './body.ts';
import type { ByteRateBudget } from './byte-rate-budget.ts';
import { ConnectionGate, type GateRefusal } from './connection-gate.ts';
import type { Router } from './router.ts';
import { listenOnSocketFile } from './socket-file.ts';

export interface HttpLimits {
  /** Whole request headers must arrive within this. */
  headersTimeoutMs: number;
  /** Whole request (headers + body) must arrive within this. */
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
  maxConnections: number;
  maxHeaderBytes: number;
}

export interface UnixServerOptions<P> {
  name: string;
  socketPath: string;
  /** File mode of the socket, e.g. 0o600. */
  mode: number;
  /** Group owner of the socket (gid); undefined keeps the daemon's. */
  gid?: number;
  limits: HttpLimits;
  router: Router<P>;
  /** Runs on every accepted connection; null refuses it (the connection is closed). */
  identify(socket: net.Socket): P | null;
  /** Checked before routing every request of the connection; a Reply refuses it. */
  authorize?(peer: P): Reply | null;
  logger: Logger;
  /**
   * What a refused request's body is dropped under (body.ts: discardBody), and what a new
   * connection waits for, unread, while it is in debt (connection-gate.ts); none: at full speed.
   */
  bodyBudget?: ByteRateBudget;
}

export class UnixHttpServer<P> {
  readonly server: http.Server;
  private readonly peers = new WeakMap<net.Socket, P>();
  private readonly gate: ConnectionGate | undefined;
  private closing = false;

  constructor(private readonly o: UnixServerOptions<P>) {
    this.server = http.createServer({
      maxHeaderSize: o.limits.maxHeaderBytes,
      requestTimeout: o.limits.requestTimeoutMs,
      keepAliveTimeout: o.limits.keepAliveTimeoutMs,
      // Node checks header/request timeouts on this interval (default 30 s): keep it a fraction of them.
      connectionsCheckingInterval: Math.max(100, Math.min(o.limits.headersTimeoutMs, o.limits.requestTimeoutMs) / 4),
    });
    this.server.headersTimeout = o.limits.headersTimeoutMs;
    this.server.maxConnections = o.limits.maxConnections;
    if (o.bodyBudget !== undefined) {
      // Node's header and request timeouts count from the accept: a connection waits at most half
      // of them, so that what it sends once admitted has the other half. Half of the connections
      // may wait; the others stay for the admitted ones.
      this.gate = new ConnectionGate(o.bodyBudget, {
        maxWaitMs: Math.min(o.limits.headersTimeoutMs, o.limits.requestTimeoutMs) / 2,
        maxWaiting: Math.max(1, Math.floor(o.limits.maxConnections / 2)),
      });
      // Accepted sockets are not read until resume(), the gate's admission: net.Server's
      // pauseOnConnect, which http.createServer does not pass on, but which net.Server reads at
      // each accept (Node 20 and 24; upload-budget-connections.test.ts fails without it).
      Object.assign(this.server, { pauseOnConnect: true });
    }
    this.server.on('connection', (socket: net.Socket) => {
      let peer: P | null = null;
      try {
        peer = o.identify(socket);
      } catch (err) {
        o.logger.warn({ err, channel: o.name }, 'reading peer credentials failed; connection refused');
      }
      if (peer === null) {
        socket.destroy();
        return;
      }
      this.peers.set(socket, peer);
      // Node's header timeout starts with the first byte: a connection that never sends one
      // would otherwise hold a slot forever.
      const silent = setTimeout(() => socket.destroy(), o.limits.headersTimeoutMs);
      socket.once('data', () => clearTimeout(silent));
      socket.once('close', () => clearTimeout(silent));
      this.gate?.enter(
        socket,
        () => socket.resume(),
        (refusal) => refuseUnread(socket, refusal),
      );
    });
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res));
    this.server.on('clientError', (err: Error & { code?: string }, socket: net.Socket) => {
      // Malformed HTTP, oversized headers, header timeouts: answer if the socket still can.
      if (!socket.writable) return socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const body = JSON.stringify({
        error: { code: 'bad-request', message: `malformed or incomplete HTTP request (${err.code ?? err.message})` },
      });
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
  }

  private inDebt(): boolean {
    return (this.o.bodyBudget?.waitFor(0) ?? 0) > 0;
  }

  listen(): Promise<void> {
    return listenOnSocketFile(this.server, this.o);
  }

  get connections(): Promise<number> {
    return new Promise((resolve) => this.server.getConnections((_e, n) => resolve(n ?? 0)));
  }

  /** Stops accepting, lets in-flight requests finish, closes idle keep-alive connections. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.gate?.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    fs.rmSync(this.o.socketPath, { force: true });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // What is left of the connection's advance on its first read (connection-gate.ts) is given
    // back once its first request is answered.
    if (this.o.bodyBudget !== undefined) res.once('close', () => this.o.bodyBudget?.settle(req.socket));
    const peer = this.peers.get(req.socket);
    if (peer === undefined) {
      discardBody(req, this.o.bodyBudget);
      return send(res, fail('forbidden', 'the connection has no verified peer credentials'), true);
    }
    if (this.closing) {
      discardBody(req, this.o.bodyBudget);
      return send(
        res,
        fail('shutting-down', 'the daemon is shutting down', 'retry against the restarted daemon'),
        true,
      );
    }
    const refusal = this.o.authorize?.(peer) ?? null;
    if (refusal !== null) {
      discardBody(req, this.o.bodyBudget);
      return send(res, refusal, true);
    }
    try {
      const reply = await this.o.router.dispatch(req, peer);
      // A body we refused to read (too large, wrong type) must not be parsed as the next request.
      // An answer given while the body budget is in debt closes the connection too: the next
      // request of a kept-alive one would be read at once, and a new connection waits at the gate.
      send(res, reply, this.closing || !req.complete || this.inDebt());
    } catch (err) {
      this.o.logger.error({ err, channel: this.o.name, url: req.url }, 'handler failed');
      send(res, fail('internal', 'internal error; see the daemon log'), true);
    }
  }
}

/** Answers a connection the gate refused without reading a byte of it, and closes it once sent. */
function refuseUnread(socket: net.Socket, refusal: GateRefusal): void {
  const reply =
    refusal.why === 'closing'
      ? fail('shutting-down', 'the daemon is shutting down', 'retry against the restarted daemon')
      : fail(
          'overloaded',
          refusal.why === 'too-many-waiting'
            ? 'too many connections are waiting for the upload budget (admin.uploadBytesPerSecond)'
            : 'the upload budget (admin.uploadBytesPerSecond) would not admit this connection within half of http.headersTimeoutMs (or of http.requestTimeoutMs, if shorter)',
          `retry after ${refusal.retryAfterS} s`,
          { headers: { 'retry-after': String(refusal.retryAfterS) } },
        );
  socket.end(encodeReply(reply, true), () => socket.destroy());
}
