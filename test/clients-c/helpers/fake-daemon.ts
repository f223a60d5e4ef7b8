// A fake capgate on a Unix socket that answers as a test scripts it: well, malformed, truncated,
// oversized, slowly or not at all. Each connection gets the script with its index; the script
// reads requests with next() (head + Content-Length body) and writes whatever bytes it likes.
import fs from 'node:fs';
import net from 'node:net';

export class FakeConnection {
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, c]);
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  /** The next complete request (head and body), or null when the client closed first. */
  async next(): Promise<string | null> {
    for (;;) {
      const end = this.buffered.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.buffered.toString('latin1', 0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (this.buffered.length >= end + 4 + length) {
          const request = this.buffered.toString('latin1', 0, end + 4 + length);
          this.buffered = this.buffered.subarray(end + 4 + length);
          return request;
        }
      }
      if (this.ended) return null;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  write(bytes: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Writes `bytes` in pieces of `size` bytes, `gapMs` apart; stops when the client has gone. */
  async trickle(bytes: string, size: number, gapMs: number): Promise<void> {
    const all = Buffer.from(bytes, 'latin1');
    for (let i = 0; i < all.length && !this.socket.destroyed; i += size) {
      this.socket.write(all.subarray(i, i + size));
      await new Promise((r) => setTimeout(r, gapMs));
    }
  }

  end(bytes?: string): void {
    if (bytes !== undefined) this.socket.end(Buffer.from(bytes, 'latin1'));
    else this.socket.end();
  }

  /** Resolves when the client closed its side (or the connection died). */
  closed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ended) return resolve();
      this.socket.once('close', () => resolve());
    });
  }
}

export type FakeScript = (c: FakeConnection, index: number) => Promise<void> | void;

export class FakeDaemon {
  connections = 0;
  readonly requests: string[] = [];
  private readonly live = new Set<net.Socket>();

  private constructor(
    readonly server: net.Server,
    readonly socketPath: string,
  ) {}

  /** Listens on `socketPath` (mode 0666: unprivileged clients may connect) and runs `script` per connection. */
  static async start(socketPath: string, script: FakeScript): Promise<FakeDaemon> {
    let self: FakeDaemon | undefined;
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const fake = self!;
      fake.live.add(socket);
      socket.once('close', () => fake.live.delete(socket));
      const c = new FakeConnection(socket);
      const index = fake.connections++;
      // Record every request the script reads.
      const next = c.next.bind(c);
      c.next = async () => {
        const r = await next();
        if (r !== null) fake.requests.push(r);
        return r;
      };
      Promise.resolve(script(c, index)).catch(() => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    fs.chmodSync(socketPath, 0o666);
    self = new FakeDaemon(server, socketPath);
    return self;
  }

  async close(): Promise<void> {
    for (const s of this.live) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }
}

/** An answer as the daemon writes it (lean server: lower-case fields, one write). */
export function answer(
  status: number,
  body: unknown,
  o: { close?: boolean; reason?: string; extraHeaders?: string } = {},
): string {
  const json = typeof body === 'string' ? body : JSON.stringify(body);
  const length = Buffer.byteLength(json);
  const head = `HTTP/1.1 ${status} ${o.reason ?? 'OK'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${length}\r\n${o.extraHeaders ?? ''}${o.close ? 'connection: close\r\n' : 'keep-alive: timeout=60\r\n'}\r\n`;
  return head + Buffer.from(json, 'utf8').toString('latin1');
}

export const ALLOW = { decision: 'allow', reason: '', decisionId: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' };
