// The lean HTTP/1.1 server of the request socket, alone, on real Unix sockets with raw bytes:
// keep-alive, pipelining, split requests, every refusal of the strict parser, timeouts,
// connection limits, peer refusal and graceful close. Routing and JSON handling through the
// request socket's own handler (request-api.ts) with a stub decision pipeline.
import fs from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import { pino } from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { ConnectionClass } from '../../runtime/server/http/lean/connection-budget.ts';
import type { RequestTurns } from '../../runtime/server/http/lean/lean-connection.ts';
import { LeanHttpServer } from '../../runtime/server/http/lean/lean-server.ts';
import { TurnQueue } from '../../runtime/server/scheduler/turn-queue.ts';
import type { LeanHandler, LeanRequest } from '../../runtime/server/http/lean/lean-request.ts';
import { fail, ok, type Reply } from '../../runtime/server/http/reply.ts';
import type { HttpLimits } from '../../runtime/server/http/unix-server.ts';
import type { DecisionPipeline } from '../../runtime/server/request/decision-pipeline.ts';
import { requestHandler } from '../../runtime/server/request/request-api.ts';
import { RawConnection, type RawAnswer } from './helpers/raw-http.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { waitUntil } from '../support/wait.ts';

interface Peer {
  connection: number;
}

const dir = tempDir('capgate-lean-');
let sockets = 0;
const servers: Array<LeanHttpServer<Peer>> = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(100)));
  removeTempDirs();
});

const LIMITS: HttpLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 60_000,
  maxConnections: 100,
  maxHeaderBytes: 1024,
};

interface Started {
  server: LeanHttpServer<Peer>;
  socketPath: string;
  /** Bytes of each 'data' event the server saw, per connection. */
  chunks: number[][];
  /** The server's side of each connection (with the default identify). */
  sockets: net.Socket[];
  open(): Promise<RawConnection>;
}

async function start(
  handler: LeanHandler<Peer>,
  o: {
    limits?: Partial<HttpLimits>;
    maxBodyBytes?: number;
    identify?: (socket: net.Socket) => Peer | null;
    classify?: (peer: Peer) => ConnectionClass;
    turns?: RequestTurns;
  } = {},
): Promise<Started> {
  const socketPath = path.join(dir, `s${++sockets}.sock`);
  const chunks: number[][] = [];
  const serverSides: net.Socket[] = [];
  const server = new LeanHttpServer<Peer>({
    name: 'test',
    socketPath,
    mode: 0o600,
    limits: { ...LIMITS, ...o.limits },
    maxBodyBytes: o.maxBodyBytes ?? 256,
    logger: pino({ level: 'silent' }),
    handler,
    identify:
      o.identify ??
      ((socket) => {
        const seen: number[] = [];
        chunks.push(seen);
        serverSides.push(socket);
        socket.on('data', (c: Buffer) => seen.push(c.length));
        return { connection: chunks.length };
      }),
    ...(o.classify !== undefined ? { classify: o.classify } : {}),
    ...(o.turns !== undefined ? { turns: o.turns } : {}),
  });
  await server.listen();
  servers.push(server);
  return { server, socketPath, chunks, sockets: serverSides, open: () => RawConnection.open(socketPath) };
}

/** Bytes the server has read so far on its `connection`-th connection (0-based). */
const bytesSeen = (s: Started, connection: number): number => (s.chunks[connection] ?? []).reduce((a, b) => a + b, 0);

/** Answers with what it received. */
const echo: LeanHandler<Peer> = (req) => ok(describeRequest(req));
function describeRequest(req: LeanRequest<Peer>) {
  return {
    method: req.method,
    path: req.path,
    query: Object.fromEntries(req.query),
    headers: { ...req.headers },
    body: req.body.toString('utf8'),
    peer: req.peer,
  };
}

const get = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nhost: x\r\n${extra}\r\n`;
const post = (target: string, body: string, extra = '') =>
  `POST ${target} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

function errorOf(a: RawAnswer): { code: string; message: string; hint?: string } {
  return (a.json as { error: { code: string; message: string; hint?: string } }).error;
}

describe('keep-alive and framing', () => {
  it('answers many requests on one connection and keeps it open', async () => {
    const s = await start(echo);
    const c = await s.open();
    for (let i = 0; i < 50; i++) {
      c.write(post(`/n?i=${i}`, `{"i":${i}}`));
      const a = await c.next();
      expect(a.status).toBe(200);
      expect(a.headers['connection']).toBeUndefined();
      expect(a.headers['keep-alive']).toBe('timeout=60');
      expect(a.json).toMatchObject({
        method: 'POST',
        path: '/n',
        query: { i: String(i) },
        body: `{"i":${i}}`,
        peer: { connection: 1 },
      });
    }
    expect(await s.server.connections).toBe(1);
    c.destroy();
  });

  it('answers pipelined requests in order, one at a time, even when the first is slow', async () => {
    let running = 0;
    let maxRunning = 0;
    const pipelined = get('/slow') + post('/second', '{"b":2}') + get('/third?x=1');
    const s: Started = await start(async (req) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      // /slow holds on until the server has read the requests behind it, and a turn of the loop
      // more: a server that ran them concurrently would have started them by then.
      if (req.path === '/slow')
        await waitUntil(() => bytesSeen(s, 0) >= pipelined.length, 'the server to read the pipelined requests');
      await new Promise((r) => setImmediate(r));
      running--;
      return ok(describeRequest(req));
    });
    const c = await s.open();
    c.write(pipelined);
    const answers = [await c.next(), await c.next(), await c.next()];
    expect(answers.map((a) => (a.json as { path: string }).path)).toEqual(['/slow', '/second', '/third']);
    expect((answers[1]!.json as { body: string }).body).toBe('{"b":2}');
    expect((answers[2]!.json as { query: unknown }).query).toEqual({ x: '1' });
    expect(maxRunning).toBe(1);
    c.destroy();

    // A handler that answers synchronously: the rest of the write is parsed in the same callback.
    const sync = await start(echo);
    const d = await sync.open();
    d.write(get('/1') + get('/2') + post('/3', '{}'));
    expect([await d.next(), await d.next(), await d.next()].map((a) => (a.json as { path: string }).path)).toEqual([
      '/1',
      '/2',
      '/3',
    ]);
    d.destroy();
  });

  it('stops reading pipelined bytes past the caps while a request is handled, and answers them all after', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = await start(async (req) => {
      if (req.path === '/first') await gate;
      return ok({ path: req.path });
    });
    const c = await s.open();
    const pad = `x-pad: ${'a'.repeat(900)}\r\n`;
    const many = Array.from({ length: 1000 }, (_, i) => get(`/r${i}`, pad)).join('');
    c.write(get('/first') + many); // ~930 KB behind a request that waits
    // The server stops reading (it pauses its socket) once a request is handled and the caps are full.
    await waitUntil(() => s.sockets[0]!.isPaused(), 'the server to pause its side of the connection');
    expect(bytesSeen(s, 0)).toBeLessThan(256 * 1024);
    expect(c.socket.writableLength).toBeGreaterThan(0); // the rest is still on the client's side
    release();
    expect(((await c.next()).json as { path: string }).path).toBe('/first');
    for (let i = 0; i < 1000; i++) expect(((await c.next()).json as { path: string }).path).toBe(`/r${i}`);
    c.destroy();
  });

  it('closes after the answer on Connection: close and on HTTP/1.0', async () => {
    const s = await start(echo);
    const c1 = await s.open();
    c1.write(get('/a', 'connection: close\r\n'));
    expect((await c1.next()).headers['connection']).toBe('close');
    await c1.closed;
    const c2 = await s.open();
    c2.write('GET /b HTTP/1.0\r\n\r\n');
    const a = await c2.next();
    expect(a.status).toBe(200);
    expect(a.headers['connection']).toBe('close');
    await c2.closed;
  });

  it('parses a request sent byte by byte, and a body sent after the headers', async () => {
    const s = await start(echo);
    const c = await s.open();
    const request = post('/split', '{"split":true}');
    await c.trickle(request);
    expect(((await c.next()).json as { body: string }).body).toBe('{"split":true}');
    // The server really saw it in pieces (many 'data' events).
    expect(s.chunks[0]!.length).toBeGreaterThan(request.length / 2);

    const body = '{"late":1}';
    const head = `POST /late HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    const before = bytesSeen(s, 0);
    c.write(head);
    await waitUntil(() => bytesSeen(s, 0) === before + head.length, 'the server to read the head');
    c.write(body);
    expect(((await c.next()).json as { body: string }).body).toBe(body);
    c.destroy();
  });

  it('answers a client that shuts its side after sending, and honours Expect: 100-continue', async () => {
    const s = await start(echo);
    const c = await s.open();
    c.socket.end(get('/half'));
    expect(((await c.next()).json as { path: string }).path).toBe('/half');
    await c.closed;

    const d = await s.open();
    d.write(`POST /expect HTTP/1.1\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n`);
    expect((await d.next()).status).toBe(100);
    d.write('{}');
    expect(((await d.next()).json as { body: string }).body).toBe('{}');
    d.destroy();
  });

  it('keeps header fields named like Object.prototype members as plain fields', async () => {
    const s = await start(echo);
    const c = await s.open();
    c.write(get('/h', '__proto__: a\r\nconstructor: b\r\nX-Mixed-Case:  c \r\n'));
    const headers = ((await c.next()).json as { headers: object }).headers;
    expect(Object.entries(headers)).toEqual([
      ['host', 'x'],
      ['__proto__', 'a'],
      ['constructor', 'b'],
      ['x-mixed-case', 'c'],
    ]);
    c.destroy();
  });

  it('treats a POST without Content-Length as an empty body', async () => {
    const s = await start(echo);
    const c = await s.open();
    c.write('POST /empty HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(((await c.next()).json as { body: string }).body).toBe('');
    c.destroy();
  });
});

describe('strict parsing: each malformed request gets its status, code and a hint, and is closed', () => {
  const big = 'x'.repeat(2000);
  it.each([
    ['not HTTP', 'NOT HTTP AT ALL\r\n\r\n', 400, 'malformed request line'],
    ['absolute-form target', 'GET http://evil/x HTTP/1.1\r\n\r\n', 400, 'malformed request line'],
    ['fragment in the target', 'GET /x#y HTTP/1.1\r\n\r\n', 400, 'malformed request line'],
    ['two spaces', 'GET  /x HTTP/1.1\r\n\r\n', 400, 'malformed request line'],
    ['HTTP/2.0', 'GET /x HTTP/2.0\r\n\r\n', 505, 'HTTP/2.0 is not supported'],
    ['HTTP/1.2', 'GET /x HTTP/1.2\r\n\r\n', 505, 'HTTP/1.2 is not supported'],
    ['header without colon', 'GET /x HTTP/1.1\r\nbad header\r\n\r\n', 400, 'malformed header line'],
    ['space before the colon', 'GET /x HTTP/1.1\r\nhost : x\r\n\r\n', 400, 'malformed header line'],
    ['obs-fold', 'GET /x HTTP/1.1\r\na: b\r\n c\r\n\r\n', 400, 'obs-fold'],
    ['bare LF line ends', 'GET /x HTTP/1.1\nhost: x\n\n', 400, 'bare LF'],
    ['bare CR in a value', 'GET /x HTTP/1.1\r\na: b\rc\r\n\r\n', 400, 'control character'],
    ['NUL in a value', 'GET /x HTTP/1.1\r\na: b\0c\r\n\r\n', 400, 'control character'],
    ['NUL in a partial head', 'GET /x HTTP/1.1\r\na: b\0', 400, 'NUL'],
    ['non-numeric Content-Length', 'POST /x HTTP/1.1\r\ncontent-length: 1a\r\n\r\n', 400, 'not a decimal number'],
    ['negative Content-Length', 'POST /x HTTP/1.1\r\ncontent-length: -1\r\n\r\n', 400, 'not a decimal number'],
    ['list Content-Length', 'POST /x HTTP/1.1\r\ncontent-length: 2, 2\r\n\r\n{}', 400, 'not a decimal number'],
    [
      'conflicting Content-Length',
      'POST /x HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}',
      400,
      'conflicting Content-Length',
    ],
    [
      'chunked Transfer-Encoding',
      'POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
      411,
      'Transfer-Encoding',
    ],
    [
      'Transfer-Encoding with Content-Length',
      'POST /x HTTP/1.1\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n{}',
      411,
      'Transfer-Encoding',
    ],
    ['oversized head', `GET /x HTTP/1.1\r\na: ${big}\r\n\r\n`, 431, 'larger than 1024 bytes'],
    ['oversized partial head', `GET /x HTTP/1.1\r\na: ${big}`, 431, 'larger than 1024 bytes'],
    ['oversized body (not read)', 'POST /x HTTP/1.1\r\ncontent-length: 1000000\r\n\r\n', 413, 'larger than 256 bytes'],
  ])('%s', async (_name, request, status, message) => {
    let handled = 0;
    const s = await start((req) => (handled++, echo(req)));
    const c = await s.open();
    c.write(request);
    const a = await c.next();
    expect(a.status).toBe(status);
    expect(a.headers['connection']).toBe('close');
    const e = errorOf(a);
    expect(e.code).toBe(status === 413 ? 'payload-too-large' : 'bad-request');
    expect(e.message).toContain(message);
    expect(e.hint).toMatch(/^send /);
    await c.closed;
    expect(handled).toBe(0);
    // The server keeps serving other connections.
    const d = await s.open();
    d.write(get('/after'));
    expect((await d.next()).status).toBe(200);
    d.destroy();
  });

  it('accepts a repeated identical Content-Length and ignores an empty line before a request', async () => {
    const s = await start(echo);
    const c = await s.open();
    c.write('\r\nPOST /x HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n{}');
    expect(((await c.next()).json as { body: string }).body).toBe('{}');
    c.destroy();
  });
});

describe('the request socket handler (request-api.ts) behind the lean server', () => {
  const decided: Array<{ targetPid: number; bytes: bigint; peer: unknown }> = [];
  let outcome: 'allow' | 'overloaded' | 'audit-failed' | 'closed' | 'policy-not-ready' = 'allow';
  // An allow is settled at once (the result itself), a refusal later (a promise): the handler answers both.
  const pipeline = {
    decideHere: (peer: unknown, _op: string, targetPid: number, bytes: bigint) => {
      decided.push({ targetPid, bytes, peer });
      if (outcome === 'allow') return { ok: true, response: { decision: 'allow', reason: '', decisionId: 'd-1' } };
      return Promise.resolve({ ok: false, reason: outcome, message: `stub ${outcome}` });
    },
  } as unknown as DecisionPipeline;
  const handler = requestHandler({
    pipeline,
    retryAfterS: 7,
    health: () => ({ status: 'ok', version: 't', uptimeS: 1 }),
    version: 't',
  }) as unknown as LeanHandler<Peer>;
  const ask = async (request: string): Promise<RawAnswer> => {
    const s = await start(handler, { maxBodyBytes: 1024 });
    const c = await s.open();
    c.write(request);
    const a = await c.next();
    c.destroy();
    return a;
  };

  it('decides a set-memlock request with the peer of the connection', async () => {
    const a = await ask(post('/v1/operations/set-memlock', '{"targetPid": 42, "bytes": "4096"}'));
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ decision: 'allow', reason: '', decisionId: 'd-1' });
    expect(decided.at(-1)).toEqual({ targetPid: 42, bytes: 4096n, peer: { connection: 1 } });
    expect((await ask(get('/v1/health'))).json).toEqual({ status: 'ok', version: 't', uptimeS: 1 });
  });

  it.each([
    ['empty body', 'POST /v1/operations/set-memlock HTTP/1.1\r\n\r\n', 400, 'bad-request', 'the body is empty'],
    ['malformed JSON', post('/v1/operations/set-memlock', '{"targetPid": 1,'), 400, 'bad-request', 'not valid JSON'],
    [
      'wrong types',
      post('/v1/operations/set-memlock', '{"targetPid": "1", "bytes": 5}'),
      400,
      'bad-request',
      'targetPid',
    ],
    [
      'identity in the body',
      post('/v1/operations/set-memlock', '{"targetPid": 1, "bytes": 5, "uid": 0}'),
      400,
      'bad-request',
      'uid',
    ],
    [
      'wrong content type',
      post('/v1/operations/set-memlock', 'x').replace('application/json', 'text/xml'),
      415,
      'unsupported-media-type',
      'text/xml',
    ],
    ['unknown route', get('/v2/everything'), 404, 'not-found', 'no route GET /v2/everything'],
    [
      'wrong method',
      get('/v1/operations/set-memlock'),
      405,
      'method-not-allowed',
      'GET is not allowed on /v1/operations/set-memlock',
    ],
  ])('%s', async (_name, request, status, code, message) => {
    const a = await ask(request);
    expect(a.status).toBe(status);
    expect(errorOf(a)).toMatchObject({ code, message: expect.stringContaining(message) });
    if (status === 405) expect(a.headers['allow']).toBe('POST');
  });

  it('maps pipeline refusals: overloaded -> 503 with Retry-After, audit-failed -> 500, closed -> 503 shutting-down, policy-not-ready -> 503 not-ready with Retry-After', async () => {
    const body = '{"targetPid": 42, "bytes": "4096"}';
    outcome = 'overloaded';
    const over = await ask(post('/v1/operations/set-memlock', body));
    expect(over.status).toBe(503);
    expect(over.headers['retry-after']).toBe('7');
    expect(errorOf(over).code).toBe('overloaded');
    outcome = 'audit-failed';
    expect(errorOf(await ask(post('/v1/operations/set-memlock', body)))).toMatchObject({
      code: 'internal',
      message: 'stub audit-failed',
    });
    outcome = 'closed';
    const closed = await ask(post('/v1/operations/set-memlock', body));
    expect([closed.status, errorOf(closed).code]).toEqual([503, 'shutting-down']);
    outcome = 'policy-not-ready';
    const early = await ask(post('/v1/operations/set-memlock', body));
    expect([early.status, early.headers['retry-after'], errorOf(early).code]).toEqual([503, '7', 'not-ready']);
    outcome = 'allow';
  });
});

describe('timeouts (one re-armed timer per connection)', () => {
  const limits = { headersTimeoutMs: 200, requestTimeoutMs: 400, keepAliveTimeoutMs: 300 };

  it('closes a connection that sends nothing', async () => {
    const s = await start(echo, { limits });
    const c = await s.open();
    await c.closed;
    expect(c.unparsed).toBe('');
  });

  it('answers 408 to a head that does not complete, and to a body that does not arrive', async () => {
    const s = await start(echo, { limits });
    const c = await s.open();
    c.write('GET /slow HTTP/1.1\r\nhost: x\r\n');
    const a = await c.next();
    expect([a.status, errorOf(a).code]).toEqual([408, 'bad-request']);
    expect(errorOf(a).message).toContain('request head did not arrive within 200 ms');
    await c.closed;

    const d = await s.open();
    d.write('POST /slow HTTP/1.1\r\ncontent-length: 10\r\n\r\n{"a"');
    const b = await d.next();
    expect(b.status).toBe(408);
    expect(errorOf(b).message).toContain('did not arrive within 400 ms');
    await d.closed;
  });

  it('keeps a busy keep-alive connection open past the idle limit, then closes it when idle', async () => {
    // The server's clock and timers are faked (the sockets are real): the gaps are exactly what
    // the test says, however long a loaded machine takes to carry the bytes.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const s = await start(echo, { limits: { ...limits, keepAliveTimeoutMs: 400 } });
      const c = await s.open();
      const server = s.sockets[0]!;
      // 8 requests 100 ms apart: 800 ms in all, twice the idle limit, never idle for 400 ms.
      for (let i = 0; i < 8; i++) {
        c.write(get(`/tick?i=${i}`));
        expect((await c.next()).status).toBe(200);
        vi.advanceTimersByTime(100);
        expect(server.destroyed).toBe(false);
      }
      // Idle since the last answer (at 700 ms): closed at 1100 ms, not a moment before.
      vi.advanceTimersByTime(299);
      expect(server.destroyed).toBe(false);
      vi.advanceTimersByTime(1);
      expect(server.destroyed).toBe(true);
      await c.closed;
      expect(c.unparsed).toBe('');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('connections', () => {
  it("enforces maxConnections: a newcomer takes the oldest idle connection's slot (budgets: connection-budget.test.ts)", async () => {
    const s = await start(echo, { limits: { maxConnections: 2 } });
    const a = await s.open();
    const b = await s.open();
    for (const c of [a, b]) {
      c.write(get('/x'));
      expect((await c.next()).status).toBe(200);
    }
    const third = await s.open();
    third.write(get('/x'));
    expect((await third.next()).status).toBe(200);
    await a.closed; // the oldest idle one made room
    expect(await s.server.connections).toBe(2);
    b.destroy();
    third.destroy();
  });

  it('closes a connection whose peer identify() refuses, without calling the handler', async () => {
    let handled = 0;
    const s = await start((req) => (handled++, echo(req)), { identify: () => null });
    const c = await s.open();
    c.write(get('/x'));
    await c.closed;
    expect(c.unparsed).toBe('');
    expect(handled).toBe(0);
  });

  it('close(grace) stops accepting, closes idle connections, and lets an in-flight request finish', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const s = await start(async (req) => {
      if (req.path === '/slow') {
        started();
        await gate;
      }
      return ok(describeRequest(req));
    });
    const idle = await s.open();
    idle.write(get('/fast'));
    expect((await idle.next()).status).toBe(200);
    const busy = await s.open();
    busy.write(get('/slow'));
    await running;

    const closing = s.server.close(10_000);
    await idle.closed;
    await expect(RawConnection.open(s.socketPath)).rejects.toThrow();
    release();
    const a = await busy.next();
    expect([a.status, a.headers['connection']]).toEqual([200, 'close']);
    await busy.closed;
    await closing;
    expect(fs.existsSync(s.socketPath)).toBe(false);
  });

  it('close(grace) force-closes a request that outlives the grace', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const s = await start(() => {
      started();
      return new Promise<Reply>(() => undefined);
    });
    const c = await s.open();
    c.write(get('/never'));
    await running;
    await s.server.close(100);
    await c.closed;
    expect(c.unparsed).toBe('');
  });
});

describe("the main thread's turn queue behind the lean server (turn-queue.ts)", () => {
  /** Connections 1..n pay as `payers[i - 1]`; the queue refuses with 503 overloaded. */
  async function withTurns(
    payers: string[],
    handler: LeanHandler<Peer>,
    maxQueuedPerKey = 50,
    queue = new TurnQueue({ maxQueued: 100, maxQueuedPerKey, contentionWindowMs: 60_000, maxWaitMs: 60_000 }),
  ) {
    const turns: RequestTurns = { queue, refusal: (reason) => fail('overloaded', `refused: ${reason}`, 'retry') };
    const classify = (peer: Peer): ConnectionClass => ({
      holder: `c${peer.connection}`,
      payer: payers[peer.connection - 1]!,
      limit: 100,
      keepAlive: true,
      mayEvict: false,
      describe: 'test',
    });
    const s = await start(handler, { classify, turns });
    const conns = [];
    for (let i = 0; i < payers.length; i++) conns.push(await s.open());
    return { s, conns, queue };
  }

  /** Holds the main thread ~`ms` (a cost the queue measures; nothing asserts on time). */
  const busy = (ms: number): void => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };

  it("counts a connection, and a request refused as it is read, as its payer's work (TurnQueue.noteWork), not as another payer's", async () => {
    const queue = new TurnQueue({ maxQueued: 100, maxQueuedPerKey: 50, contentionWindowMs: 60_000, maxWaitMs: 60_000 });
    const noted: string[] = [];
    queue.noteWork = (key) => void noted.push(key);
    const { conns } = await withTurns(['junk', 'victim'], echo, 50, queue);
    expect(noted).toEqual(['junk', 'victim']); // their accepts
    const [junk, victim] = conns as [RawConnection, RawConnection];
    victim.write(post('/v', '{}'));
    expect((await victim.next()).status).toBe(200);
    junk.write('NOT HTTP AT ALL\r\n\r\n');
    expect((await junk.next()).status).toBe(400);
    await junk.closed;
    expect(noted).toEqual(['junk', 'victim', 'junk']);
  });

  it("runs the request of the payer that cost least first, among those read in one poll, and each payer's in order", async () => {
    const order: string[] = [];
    const waited = new Map<string, number>();
    const { conns } = await withTurns(['flood', 'flood', 'victim'], (req) => {
      order.push(req.path);
      waited.set(req.path, req.waitedMs);
      if (req.path.startsWith('/f')) busy(1);
      return ok({ path: req.path });
    });
    const [f1, f2, v] = conns as [RawConnection, RawConnection, RawConnection];
    // Both have asked: the flood's recent cost is fifteen busy requests; the victim's, the flood's
    // when it joined (ten) and one cheap one.
    for (let i = 0; i < 10; i++) {
      f1.write(get(`/f-warm${i}`));
      await f1.next();
    }
    v.write(get('/v-warm'));
    await v.next();
    // The victim joined at the flood's cost (turn-queue.ts); the flood has cost more since.
    for (let i = 10; i < 15; i++) {
      f1.write(get(`/f-warm${i}`));
      await f1.next();
    }
    order.length = 0;
    // Written in one go: the server's next poll reads all three connections, the victim's last.
    f1.write(get('/f1'));
    f2.write(get('/f2'));
    v.write(get('/v'));
    const answers = await Promise.all([f1.next(), f2.next(), v.next()]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(order).toEqual(['/v', '/f1', '/f2']);
    // The handler learns how long each waited (the pipeline counts its deadline from arrival):
    // nothing for the flood's first request, which ran at once; /f2 at least /f1's busy 1 ms.
    expect(waited.get('/f-warm0')).toBe(0);
    expect(waited.get('/f2')).toBeGreaterThanOrEqual(1);
    for (const c of conns) c.destroy();
  });

  // The connection keeps the request it hands to the queue in state of its own, reused for the
  // next one: nothing of a request may reach the handler or the answer of another.
  it('hands each pipelined request that waited its turn its own head and body', async () => {
    const { conns } = await withTurns(['a', 'b'], echo);
    const [a, b] = conns as [RawConnection, RawConnection];
    b.write(get('/b-warm'));
    await b.next();
    // Each waits (b asked), runs in a check phase, and the next is parsed after its answer.
    a.write([0, 1, 2].map((i) => post(`/p${i}`, `{"n":${i}}`, `x-n: ${i}\r\n`)).join(''));
    for (let i = 0; i < 3; i++) {
      const r = await a.next();
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ path: `/p${i}`, body: `{"n":${i}}`, headers: { 'x-n': String(i) } });
    }
    for (const c of conns) c.destroy();
  });

  it('answers a request refused past its deadline with the refusal, and the next on the connection with its own bytes', async () => {
    // The queue's clock and check phases are the test's: the refusal is decided, not timed.
    let now = 0;
    const steps: Array<() => void> = [];
    let stepQueued!: () => void;
    const queued = new Promise<void>((resolve) => (stepQueued = resolve));
    const queue = new TurnQueue(
      { maxQueued: 100, maxQueuedPerKey: 50, contentionWindowMs: 60_000, maxWaitMs: 1000 },
      {
        clock: {
          now: () => now,
          defer: (fn) => {
            steps.push(fn);
            stepQueued();
          },
          afterMicrotasks: (fn) => void Promise.resolve().then(() => process.nextTick(fn)),
          setTimer: () => undefined, // no pacing here (no share): never asked
          clearTimer: () => {},
        },
      },
    );
    const ran: string[] = [];
    const { conns } = await withTurns(
      ['a', 'b'],
      (req) => {
        ran.push(req.path);
        return echo(req);
      },
      50,
      queue,
    );
    const [a, b] = conns as [RawConnection, RawConnection];
    b.write(get('/b-warm'));
    await b.next();
    a.write(post('/late', '{"n":"late"}', 'x-n: late\r\n') + post('/next', '{"n":"next"}', 'x-n: next\r\n'));
    await queued; // /late waits its turn (b asked); /next waits behind it in the connection
    now = 100_000; // past /late's deadline, and past b's contention window
    steps.shift()!();
    const late = await a.next();
    expect(late.status).toBe(503);
    expect(errorOf(late)).toMatchObject({ code: 'overloaded', message: 'refused: deadline' });
    const next = await a.next(); // ran at once: nobody else asked within the window
    expect(next.status).toBe(200);
    expect(next.json).toMatchObject({ path: '/next', body: '{"n":"next"}', headers: { 'x-n': 'next' } });
    expect(ran).toEqual(['/b-warm', '/next']);
    for (const c of conns) c.destroy();
  });

  it("answers a request past its payer's queue bound with the refusal, never running it, and goes on with the connection", async () => {
    const order: string[] = [];
    const { conns, queue } = await withTurns(
      ['a', 'b', 'b'],
      (req) => {
        order.push(req.path);
        if (req.path.startsWith('/b-warm')) busy(1);
        return ok({ path: req.path });
      },
      1,
    );
    const [a, b1, b2] = conns as [RawConnection, RawConnection, RawConnection];
    // Both have asked, b at a greater cost: a joined at b's (turn-queue.ts), and b has cost more
    // since. (Joined at equal costs, which of a and b1 ran first would be the poll's read order.)
    b1.write(get('/b-warm'));
    await b1.next();
    a.write(get('/a-warm'));
    await a.next();
    b1.write(get('/b-warm2'));
    await b1.next();
    // One poll: a's request waits (b asked), b1's waits, b2's finds b's queue full.
    a.write(get('/a'));
    b1.write(get('/b1'));
    b2.write(get('/b2'));
    const [ra, rb1, rb2] = await Promise.all([a.next(), b1.next(), b2.next()]);
    expect([ra.status, rb1.status]).toEqual([200, 200]);
    expect(rb2.status).toBe(503);
    expect(errorOf(rb2)).toMatchObject({ code: 'overloaded', message: 'refused: vm-queue-full' });
    expect(order).toEqual(['/b-warm', '/a-warm', '/b-warm2', '/a', '/b1']);
    // The refused connection stays usable.
    b2.write(get('/b2-again'));
    expect((await b2.next()).status).toBe(200);
    expect(queue.queued).toBe(0);
    for (const c of conns) c.destroy();
  });
});
