// A minimal HTTP/1.1 keep-alive client over a Unix socket, for measuring the daemon rather than
// Node's http client (which costs ~250 µs of CPU per request here, on the same 2 cores as the
// daemon). Like wrk: the request bytes are built once, the answer is read by content-length.
// One request in flight per connection; bench use only (no chunked encoding, no redirects).
import net from 'node:net';

export interface RawAnswer {
  status: number;
  body: string;
}

export class RawHttpConnection {
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (a: RawAnswer) => void; reject: (e: Error) => void } | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.tryAnswer();
    });
    const fail = (err: Error): void => {
      const w = this.waiting;
      this.waiting = null;
      w?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the daemon closed the connection')));
  }

  static connect(socketPath: string): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => resolve(new RawHttpConnection(s)));
      s.once('error', reject);
    });
  }

  /** Sends prebuilt request bytes; resolves with the answer. */
  send(request: Buffer): Promise<RawAnswer> {
    if (this.waiting) return Promise.reject(new Error('one request at a time per connection'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(request);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private tryAnswer(): void {
    const end = this.buffered.indexOf('\r\n\r\n');
    if (end < 0 || this.waiting === null) return;
    const head = this.buffered.toString('latin1', 0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!Number.isFinite(length))
      return this.waiting.reject(new Error(`answer without content-length: ${head.slice(0, 200)}`));
    if (this.buffered.length < end + 4 + length) return;
    const status = Number(head.slice(9, 12));
    const body = this.buffered.toString('utf8', end + 4, end + 4 + length);
    this.buffered = this.buffered.subarray(end + 4 + length);
    const w = this.waiting;
    this.waiting = null;
    w.resolve({ status, body });
  }
}

/** The bytes of one POST with a JSON body. */
export function buildJsonPost(path: string, body: unknown): Buffer {
  const json = JSON.stringify(body);
  return Buffer.from(
    `POST ${path} HTTP/1.1\r\nhost: capgate\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  );
}
