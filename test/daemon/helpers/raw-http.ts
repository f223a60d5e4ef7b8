// A raw HTTP/1.1 client connection for server tests: writes exact bytes, parses the answers
// (status, headers, content-length body) in order, and tells when the server closed.
import net from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

export class RawConnection {
  readonly closed: Promise<void>;
  private buffered = Buffer.alloc(0);
  private readonly answers: RawAnswer[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.parse();
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.waiter?.();
        resolve();
      }),
    );
  }

  static open(socketPath: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Writes `bytes` one byte per write, waiting `gapMs` between them. */
  async trickle(bytes: string, gapMs = 1): Promise<void> {
    for (const b of Buffer.from(bytes, 'latin1')) {
      this.socket.write(Buffer.of(b));
      await new Promise((r) => setTimeout(r, gapMs));
    }
  }

  /** The next complete answer; rejects if the connection closes first. */
  async next(): Promise<RawAnswer> {
    for (;;) {
      const a = this.answers.shift();
      if (a !== undefined) return a;
      if (this.ended)
        throw new Error(
          `the server closed the connection (unparsed bytes: ${JSON.stringify(this.buffered.toString('latin1'))})`,
        );
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** Bytes received and not parsed as an answer (e.g. an interim 100 Continue is parsed, this is the rest). */
  get unparsed(): string {
    return this.buffered.toString('latin1');
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parse(): void {
    for (;;) {
      const end = this.buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.buffered.toString('latin1', 0, end).split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!)?.[1] ?? NaN);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = status === 100 ? 0 : Number(headers['content-length'] ?? NaN);
      if (!Number.isFinite(length)) throw new Error(`answer without content-length: ${lines.join(' | ')}`);
      if (this.buffered.length < end + 4 + length) return;
      const body = this.buffered.toString('utf8', end + 4, end + 4 + length);
      this.buffered = this.buffered.subarray(end + 4 + length);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      this.answers.push({ status, headers, body, json });
    }
  }
}
