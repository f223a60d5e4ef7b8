// Policy upload bodies are read under a byte-rate budget (server/http/byte-rate-budget.ts): every
// byte read is paid for, a body that overdraws the budget is paused until the debt is paid back,
// and none is read meanwhile; an upload within the burst is not held at all. The bucket runs on an
// injected clock, and the pause's timer is a fake one, moved on by the test: no wall-clock
// duration is asserted, only what is read before and after.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { readBody, type BodyResult } from '../../runtime/server/http/body.ts';
import { ByteRateBudget } from '../../runtime/server/http/byte-rate-budget.ts';
import { Router } from '../../runtime/server/http/router.ts';
import { UnixHttpServer } from '../../runtime/server/http/unix-server.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);
afterEach(() => vi.useRealTimers());

describe('the byte-rate budget', () => {
  it('lets the burst through at once, then asks for the debt’s time, refilled at the rate up to the burst', () => {
    let now = 0;
    const budget = new ByteRateBudget(1000, 500, () => now);
    expect(budget.spend(400)).toBe(0);
    expect(budget.spend(100)).toBe(0);
    expect(budget.spend(250)).toBe(250); // 250 bytes owed at 1000/s
    now += 250;
    expect(budget.spend(0)).toBe(0);
    now += 10_000; // refilled, but to the burst only
    expect(budget.spend(500)).toBe(0);
    expect(budget.spend(1)).toBe(1);
  });

  it('takes a payer’s advance now, pays what it reads from that first, and gives back the rest when settled', () => {
    let now = 0;
    const budget = new ByteRateBudget(1000, 500, () => now);
    const connection = {};
    budget.advance(connection, 400);
    expect(budget.waitFor(100)).toBe(0);
    expect(budget.waitFor(101)).toBe(1); // 100 bytes left
    expect(budget.spend(300, connection)).toBe(0); // from the advance
    expect(budget.waitFor(101)).toBe(1);
    expect(budget.spend(150, connection)).toBe(0); // 100 from the advance, 50 from the budget
    expect(budget.waitFor(51)).toBe(1);
    budget.settle(connection); // nothing left to give back
    expect(budget.waitFor(51)).toBe(1);
    const other = {};
    budget.advance(other, 300); // 250 owed
    expect(budget.waitFor(0)).toBe(250);
    budget.settle(other); // unread: given back
    expect(budget.waitFor(50)).toBe(0);
    expect(budget.waitFor(51)).toBe(1);
    budget.settle(other);
    expect(budget.waitFor(51)).toBe(1); // once only
    now += 10_000;
    budget.settle(budget); // no advance: nothing
    expect(budget.waitFor(500)).toBe(0); // refilled to the burst, not beyond
    expect(budget.waitFor(501)).toBe(1);
  });
});

/** A server on a Unix socket reading each body with readBody under `budget`, at most `maxBytes` of it. */
async function server(budget: ByteRateBudget, maxBytes = 64 << 20) {
  const socket = path.join(tempDir('capgate-upload-budget-'), 's');
  const requests: http.IncomingMessage[] = [];
  const bodies: Array<Promise<BodyResult>> = [];
  const srv = http.createServer((req, res) => {
    requests.push(req);
    const body = readBody(req, maxBytes, budget);
    bodies.push(body);
    void body.then((r) => res.end(r.ok ? String(r.body.length) : 'refused'));
  });
  await new Promise<void>((r) => srv.listen(socket, r));
  return { socket, requests, bodies, close: () => new Promise((r) => srv.close(r)) };
}

function post(socket: string, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request(
      { socketPath: socket, method: 'POST', path: '/', agent: false, headers: { 'content-length': body.length } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', (err) => resolve(`client error: ${err.message}`));
    req.end(body);
  });
}

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('an upload body under the budget', () => {
  it('is paused once it overdraws the budget, nothing more is read until the debt is paid, and it arrives whole', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const spent: number[] = [];
    const waits: number[] = [];
    const inner = new ByteRateBudget(1024 * 1024, 64 * 1024, () => 0); // a clock that never moves: every debt stays owed
    const budget = {
      spend(bytes: number): number {
        spent.push(bytes);
        const wait = inner.spend(bytes);
        waits.push(wait);
        return wait;
      },
    } as ByteRateBudget;
    const s = await server(budget);
    const body = Buffer.from(Uint8Array.from({ length: 3 << 20 }, (_, i) => (i * 7) & 0xff));
    const answer = post(s.socket, body);
    let settled = false;
    let pauses = 0;
    for (;;) {
      // Until the first overdraw the body flows; from then on it is paused, and while the timer
      // that resumes it has not fired no byte of it is read, however many turns pass.
      await vi.waitUntil(
        () => {
          if (s.bodies.length === 1) void s.bodies[0]!.then(() => (settled = true));
          return settled || (s.requests[0]?.isPaused() === true && vi.getTimerCount() > 0);
        },
        { timeout: 30_000, interval: 1 },
      );
      if (settled) break;
      pauses++;
      expect(waits.at(-1)).toBeGreaterThan(0);
      const readSoFar = spent.length;
      await turns(50);
      expect(spent.length).toBe(readSoFar);
      vi.advanceTimersByTime(waits.at(-1)!);
    }
    expect(await answer).toBe(String(body.length));
    const r = await s.bodies[0]!;
    expect(r.ok && Buffer.compare(r.body, body)).toBe(0);
    expect(spent.reduce((a, b) => a + b, 0)).toBe(body.length);
    // Past the burst, every chunk overdraws (the clock never moves), and each paused the body
    // (the last one's pause may be cut short by the body's end).
    const overdraws = waits.filter((w) => w > 0).length;
    expect(overdraws).toBeGreaterThan(10);
    expect(pauses).toBeGreaterThanOrEqual(overdraws - 1);
    await s.close();
  });

  it('within the burst is read at once, never paused', async () => {
    const budget = new ByteRateBudget(1024, 1 << 20, () => 0);
    const s = await server(budget);
    const body = Buffer.alloc(512 * 1024, 7);
    expect(await post(s.socket, body)).toBe(String(body.length));
    expect(s.requests[0]!.isPaused()).toBe(false);
    await s.close();
    expect(fs.existsSync(s.socket)).toBe(false);
  });

  it('refused as too large, is dropped under the budget too: once it overdraws, nothing more is read until the debt is paid', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const spent: number[] = [];
    const inner = new ByteRateBudget(1024 * 1024, 64 * 1024, () => 0);
    const budget = { spend: (bytes: number) => (spent.push(bytes), inner.spend(bytes)) } as ByteRateBudget;
    const s = await server(budget, 1024);
    const body = Buffer.alloc(3 << 20, 1);
    void post(s.socket, body);
    await vi.waitUntil(() => s.requests[0]?.isPaused() === true && vi.getTimerCount() > 0, {
      timeout: 30_000,
      interval: 1,
    });
    const r = await s.bodies[0]!;
    expect(r.ok ? 'read' : r.reply.status).toBe(413);
    const readSoFar = spent.reduce((a, b) => a + b, 0);
    expect(readSoFar).toBeLessThan(body.length);
    await turns(50);
    expect(spent.reduce((a, b) => a + b, 0)).toBe(readSoFar);
    vi.advanceTimersByTime(60_000);
    await vi.waitUntil(() => spent.reduce((a, b) => a + b, 0) > readSoFar, { timeout: 30_000, interval: 1 });
    s.requests[0]!.socket.destroy();
    await s.close();
  });
});

describe('a new connection to the admin socket while the budget is in debt', () => {
  // A socket paused in its 'connection' event (to wait out the debt before its first read) was
  // never read again once resumed: Node's HTTP parser consumes the socket's handle itself. So new
  // connections are not held; this guards that they are answered.
  it('is answered', async () => {
    const budget = new ByteRateBudget(1000, 0); // 1000 bytes a second, no burst
    let requests = 0;
    const srv = new UnixHttpServer<object>({
      name: 'budget-gate-test',
      socketPath: path.join(tempDir('capgate-upload-gate-'), 's'),
      mode: 0o600,
      limits: {
        headersTimeoutMs: 60_000,
        requestTimeoutMs: 60_000,
        keepAliveTimeoutMs: 60_000,
        maxConnections: 8,
        maxHeaderBytes: 16 * 1024,
      },
      router: new Router<object>({ role: 'admin', maxJsonBytes: 1024, bodyBudget: budget }),
      identify: () => ({}),
      logger: pino({ level: 'silent' }),
      bodyBudget: budget,
    });
    srv.server.on('request', () => requests++);
    await srv.listen();
    try {
      expect(budget.spend(300)).toBeGreaterThan(0); // ~0.3 s owed
      expect(await post(srv.server.address() as string, Buffer.alloc(100))).toMatch(/not-found|no route/i);
      expect(requests).toBe(1);
    } finally {
      await srv.close(0);
    }
  });
});
