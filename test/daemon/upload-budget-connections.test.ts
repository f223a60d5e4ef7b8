// A new connection's first read (its head, and up to 64 KiB of body with it) comes before any
// route can pause its body: while the upload budget is in debt, a flood that opens a connection
// per upload must not get those bytes read on the main thread either. What is counted here is
// what the server read of each accepted socket (socket.bytesRead, kept by the stream under
// Node's HTTP parser), on a budget whose clock the test moves and a fake setTimeout: no
// wall-clock duration is asserted, only what is read before and after the debt is paid.
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { readBody } from '../../runtime/server/http/body.ts';
import { ByteRateBudget } from '../../runtime/server/http/byte-rate-budget.ts';
import { ok } from '../../runtime/server/http/reply.ts';
import { Router } from '../../runtime/server/http/router.ts';
import { type HttpLimits, UnixHttpServer } from '../../runtime/server/http/unix-server.ts';
import { ADMIN_ROUTES } from '../../runtime/wire/routes.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);
afterEach(() => vi.useRealTimers());

const LIMITS: HttpLimits = {
  headersTimeoutMs: 60_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 60_000,
  maxConnections: 64,
  maxHeaderBytes: 16 * 1024,
};

/** The admin socket's HTTP server with one upload route that reads its body under `budget`. */
async function adminServer(budget: ByteRateBudget, limits: Partial<HttpLimits> = {}) {
  const router = new Router<object>({ role: 'admin', maxJsonBytes: 1024, bodyBudget: budget }).on(
    ADMIN_ROUTES.pushPolicy,
    async ({ req }) => {
      const body = await readBody(req, 64 << 20, budget);
      return body.ok ? ok({ bytes: body.body.length }) : body.reply;
    },
  );
  const srv = new UnixHttpServer<object>({
    name: 'upload-gate-test',
    socketPath: path.join(tempDir('capgate-upload-gate-'), 's'),
    mode: 0o600,
    limits: { ...LIMITS, ...limits },
    router,
    identify: () => ({}),
    logger: pino({ level: 'silent' }),
    bodyBudget: budget,
  });
  const accepted: net.Socket[] = [];
  srv.server.on('connection', (s: net.Socket) => accepted.push(s));
  await srv.listen();
  return {
    srv,
    socketPath: srv.server.address() as string,
    accepted,
    /** Bytes the server has read of every connection it accepted. */
    bytesRead: () => accepted.reduce((sum, s) => sum + s.bytesRead, 0),
    /** Connections the server has read anything of. */
    read: () => accepted.filter((s) => s.bytesRead > 0).length,
  };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function upload(socketPath: string, body: Buffer, agent: http.Agent | false = false): Promise<Answer | string> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        socketPath,
        method: 'POST',
        path: '/v1/policies?name=bomb',
        agent,
        headers: { 'content-type': 'application/wasm', 'content-length': body.length },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', (err) => resolve(`client error: ${err.message}`));
    req.end(body);
  });
}

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

const MiB = 1 << 20;

describe('new connections to the admin socket while the upload budget is in debt', () => {
  it('are not read until the debt is paid, then one at a time, and each is answered', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let now = 0;
    const budget = new ByteRateBudget(MiB, 0, () => now); // 1 MiB/s, no burst
    const s = await adminServer(budget);
    try {
      expect(budget.spend(MiB / 2)).toBe(500); // half a second owed
      const body = Buffer.alloc(256 * 1024, 7);
      const flood = Array.from({ length: 8 }, () => upload(s.socketPath, body));
      await vi.waitUntil(() => s.accepted.length === 8, { timeout: 30_000, interval: 1 });
      // Every connection is accepted, and its head and body wait in the kernel: none is read
      // while the debt is owed, however many turns pass.
      await turns(50);
      expect(s.bytesRead()).toBe(0);

      // The debt paid, the first connection is read; it pays for its first read in advance, so
      // the budget is in debt again and the next waits.
      now += 500;
      vi.advanceTimersByTime(500);
      await vi.waitUntil(() => s.read() === 1, { timeout: 30_000, interval: 1 });
      await turns(50);
      expect(s.read()).toBe(1);

      let answered = 0;
      for (const a of flood) void a.then(() => answered++);
      while (answered < flood.length) {
        now += 1000;
        vi.advanceTimersByTime(1000);
        await turns(5);
      }
      for (const a of await Promise.all(flood))
        expect(a).toMatchObject({ status: 200, text: `{"bytes":${body.length}}` });
      expect(s.read()).toBe(8);
    } finally {
      vi.useRealTimers();
      await s.srv.close(0);
    }
  });

  it('are answered 503 with Retry-After, unread, when their wait would pass half the header timeout', async () => {
    const now = 0;
    const budget = new ByteRateBudget(MiB, 0, () => now);
    const s = await adminServer(budget, { headersTimeoutMs: 2000 });
    try {
      expect(budget.spend(10 * MiB)).toBe(10_000); // 10 s owed, past 1 s
      const a = await upload(s.socketPath, Buffer.alloc(256 * 1024, 7));
      expect(a).toMatchObject({ status: 503, headers: { 'retry-after': '10', connection: 'close' } });
      expect(JSON.parse((a as Answer).text).error.code).toBe('overloaded');
      expect(s.accepted.length).toBe(1);
      expect(s.bytesRead()).toBe(0);
    } finally {
      await s.srv.close(0);
    }
  });

  it('wait at most half of http.maxConnections at a time: the next is answered 503 at once, unread', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let now = 0;
    const budget = new ByteRateBudget(MiB, 0, () => now);
    const s = await adminServer(budget, { maxConnections: 4 });
    try {
      expect(budget.spend(MiB / 10)).toBe(100);
      const body = Buffer.alloc(100_000, 1);
      const waiting = [upload(s.socketPath, body), upload(s.socketPath, body)];
      await vi.waitUntil(() => s.accepted.length === 2, { timeout: 30_000, interval: 1 });
      const refused = await upload(s.socketPath, body);
      expect(refused).toMatchObject({ status: 503, headers: { connection: 'close' } });
      expect(JSON.parse((refused as Answer).text).error.code).toBe('overloaded');
      expect(s.bytesRead()).toBe(0);
      let answered = 0;
      for (const a of waiting) void a.then(() => answered++);
      while (answered < waiting.length) {
        now += 1000;
        vi.advanceTimersByTime(1000);
        await turns(5);
      }
      for (const a of await Promise.all(waiting)) expect(a).toMatchObject({ status: 200 });
    } finally {
      vi.useRealTimers();
      await s.srv.close(0);
    }
  });

  it('waiting when the server closes are answered 503 shutting-down, unread', async () => {
    const budget = new ByteRateBudget(MiB, 0, () => 0);
    const s = await adminServer(budget);
    let closed = false;
    try {
      budget.spend(MiB); // 1 s owed, for ever: the clock never moves
      const waiting = upload(s.socketPath, Buffer.alloc(100_000, 1));
      await vi.waitUntil(() => s.accepted.length === 1, { timeout: 30_000, interval: 1 });
      const closing = s.srv.close(0);
      closed = true;
      const a = await waiting;
      expect(a).toMatchObject({ status: 503, headers: { connection: 'close' } });
      expect(JSON.parse((a as Answer).text).error.code).toBe('shutting-down');
      expect(s.bytesRead()).toBe(0);
      await closing;
    } finally {
      if (!closed) await s.srv.close(0);
    }
  });

  it('a kept-alive connection is closed with an answer given in debt, so its next request waits at the gate as a new one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let now = 0;
    const budget = new ByteRateBudget(MiB, MiB, () => now);
    const s = await adminServer(budget);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const small = Buffer.alloc(1000, 1);
      const first = await upload(s.socketPath, small, agent);
      expect(first).toMatchObject({ status: 200 });
      expect((first as Answer).headers.connection).not.toBe('close');
      budget.spend(2 * MiB); // in debt: 1 s owed
      const second = await upload(s.socketPath, small, agent); // on the kept connection
      expect(second).toMatchObject({ status: 200, headers: { connection: 'close' } });
      expect(s.accepted.length).toBe(1);
      const third = upload(s.socketPath, small, agent);
      await vi.waitUntil(() => s.accepted.length === 2, { timeout: 30_000, interval: 1 });
      await turns(50);
      expect(s.accepted[1]!.bytesRead).toBe(0);
      now += 5000;
      vi.advanceTimersByTime(5000);
      expect(await third).toMatchObject({ status: 200 });
    } finally {
      agent.destroy();
      vi.useRealTimers();
      await s.srv.close(0);
    }
  });
});
