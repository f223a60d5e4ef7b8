// HTTP/1.1 over a Unix socket with persistent (keep-alive) connections.
import http from 'node:http';
import { isErrorBody, JSON_CONTENT_TYPE, pathOf, type BodyOf, type ResponseOf, type RouteSpec } from '../wire/index.ts';
import { CapgateApiError, CapgateConnectionError, connectionHint } from './errors.ts';

export interface TransportOptions {
  socketPath: string;
  /** Per-call timeout; default 30 s. */
  timeoutMs?: number;
  /** Connections kept open to the socket; default 16. */
  maxSockets?: number;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class UnixHttpTransport {
  readonly socketPath: string;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;

  constructor(options: TransportOptions) {
    this.socketPath = options.socketPath;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 16 });
  }

  request(method: string, path: string, body?: { contentType: string; data: Buffer | string }): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { accept: JSON_CONTENT_TYPE };
      if (body) {
        headers['content-type'] = body.contentType;
        headers['content-length'] = Buffer.byteLength(body.data);
      }
      const req = http.request(
        { socketPath: this.socketPath, method, path, headers, agent: this.agent, timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', (err) => reject(this.connectionError(err)));
        },
      );
      req.on('timeout', () =>
        req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })),
      );
      req.on('error', (err) => reject(this.connectionError(err)));
      req.end(body?.data);
    });
  }

  /** Sends, then decodes a JSON answer; a 4xx/5xx becomes a CapgateApiError. */
  async json<T>(method: string, path: string, jsonBody?: unknown): Promise<T> {
    const res = await this.request(
      method,
      path,
      jsonBody === undefined ? undefined : { contentType: JSON_CONTENT_TYPE, data: JSON.stringify(jsonBody) },
    );
    return decodeJson<T>(res);
  }

  /**
   * Calls a route of the wire's route table: the path filled from `params`, the query appended,
   * the JSON body typed by the route's request schema and the answer by its response schema.
   */
  call<R extends RouteSpec>(
    route: R,
    options: {
      params?: Record<string, string | number>;
      query?: Record<string, string | number | undefined>;
      body?: BodyOf<R>;
    } = {},
  ): Promise<ResponseOf<R>> {
    let path = pathOf(route, options.params);
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) q.set(k, String(v));
    if (q.size > 0) path += `?${q}`;
    return this.json<ResponseOf<R>>(route.method, path, options.body);
  }

  close(): void {
    this.agent.destroy();
  }

  private connectionError(err: Error & { code?: string }): CapgateConnectionError {
    return new CapgateConnectionError(
      this.socketPath,
      err.code,
      `${this.socketPath}: ${err.message}`,
      connectionHint(err.code, this.socketPath),
    );
  }
}

export function decodeJson<T>(res: RawResponse): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new CapgateApiError(
      res.status,
      'unexpected-response',
      `the daemon answered ${res.status} with a body that is not JSON`,
    );
  }
  if (res.status >= 400) {
    if (isErrorBody(parsed)) {
      const e = parsed.error;
      throw new CapgateApiError(
        res.status,
        e.code,
        e.message,
        e.hint,
        e.kind,
        retryAfterSeconds(res.headers['retry-after']),
      );
    }
    throw new CapgateApiError(
      res.status,
      'unexpected-response',
      `the daemon answered ${res.status} without an error body`,
    );
  }
  return parsed as T;
}

/** Retry-After as delta-seconds, at most an hour; undefined for anything else (a date, garbage, absent). */
export function retryAfterSeconds(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,4}$/.test(value.trim())) return undefined;
  const s = Number(value.trim());
  return s <= 3600 ? s : undefined;
}
