// Connection budgets of the lean server (connection-budget.ts), on real Unix sockets: who is
// closed when the socket or a holder is full, who is refused, and who gets no keep-alive. The
// daemon-level attack (a uid in no VM holding every connection) is in
// test/security/connection-starvation.test.ts.
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConnectionClass } from '../../runtime/server/http/lean/connection-budget.ts';
import type { LeanHandler } from '../../runtime/server/http/lean/lean-request.ts';
import { LeanHttpServer } from '../../runtime/server/http/lean/lean-server.ts';
import { ok } from '../../runtime/server/http/reply.ts';
import type { HttpLimits } from '../../runtime/server/http/unix-server.ts';
import { RawConnection } from './helpers/raw-http.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { waitUntil } from '../support/wait.ts';

const dir = tempDir('capgate-budget-');
const servers: Array<LeanHttpServer<ConnectionClass>> = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(100)));
  removeTempDirs();
});

const LIMITS: HttpLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 60_000,
  maxConnections: 4,
  maxHeaderBytes: 1024,
};
const get = (target: string) => `GET ${target} HTTP/1.1\r\nhost: x\r\n\r\n`;

const vm = (name: string, limit = 8): ConnectionClass => ({
  holder: `vm:${name}`,
  limit,
  keepAlive: true,
  mayEvict: true,
  describe: `VM "${name}"`,
});
const outside = (uid: number, limit = 2, pool = 3): ConnectionClass => ({
  holder: `uid:${uid}`,
  limit,
  pool: { name: 'outside-vms', limit: pool },
  keepAlive: false,
  mayEvict: false,
  describe: `uid ${uid} (in no registered VM)`,
});

/**
 * A server whose peers are the classes the test queues, in connection order. `/hold` waits
 * until release() (a busy connection); anything else answers at once.
 */
async function start(maxConnections = 4) {
  const socketPath = path.join(dir, `s${servers.length}.sock`);
  const queue: ConnectionClass[] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  let holding = 0;
  const handler: LeanHandler<ConnectionClass> = async (req) => {
    if (req.path === '/hold') {
      holding++;
      await gate;
    }
    return ok({ holder: req.peer.holder });
  };
  const server = new LeanHttpServer<ConnectionClass>({
    name: 'budget-test',
    socketPath,
    mode: 0o600,
    limits: { ...LIMITS, maxConnections },
    maxBodyBytes: 256,
    logger: pino({ level: 'silent' }),
    handler,
    identify: () => queue.shift() ?? null,
    classify: (peer) => peer,
  });
  await server.listen();
  servers.push(server);
  return {
    server,
    /** Opens a connection as `cls` and has one request answered on it (it is then idle, or closed without keep-alive). */
    async idle(cls: ConnectionClass): Promise<RawConnection> {
      queue.push(cls);
      const c = await RawConnection.open(socketPath);
      c.write(get('/x'));
      expect((await c.next()).status).toBe(200);
      return c;
    },
    /** Opens a connection as `cls` whose request stays in the handler until releaseAll(). */
    async busy(cls: ConnectionClass): Promise<RawConnection> {
      queue.push(cls);
      const before = holding;
      const c = await RawConnection.open(socketPath);
      c.write(get('/hold'));
      await waitUntil(() => holding > before, 'the request to reach the handler'); // the connection is busy
      return c;
    },
    /** Opens a connection as `cls` and returns the first answer (a 503 if it was refused). */
    async attempt(cls: ConnectionClass) {
      queue.push(cls);
      const c = await RawConnection.open(socketPath);
      c.write(get('/x'));
      const answer = await c.next();
      return { c, answer };
    },
    releaseAll() {
      release();
      gate = new Promise<void>((r) => (release = r));
    },
  };
}

/** Whether the server still serves `c`: one more request on it is answered (a closed one rejects). */
async function stillOpen(c: RawConnection): Promise<boolean> {
  c.write(get('/x'));
  const a = await c.next();
  return a.status === 200 && a.headers['connection'] !== 'close';
}

describe('a full socket', () => {
  it('closes the oldest idle connection of the biggest holder to admit a VM', async () => {
    const s = await start(4);
    const a1 = await s.idle(vm('a'));
    const a2 = await s.idle(vm('a'));
    const a3 = await s.idle(vm('a'));
    const b1 = await s.idle(vm('b'));
    const { c: b2, answer } = await s.attempt(vm('b'));
    expect(answer.status).toBe(200);
    await a1.closed; // a holds the most; a1 is its oldest idle connection
    expect(await stillOpen(a2)).toBe(true);
    expect(await stillOpen(a3)).toBe(true);
    expect(await stillOpen(b1)).toBe(true);
    expect(s.server.budget.evictions).toBe(1);
    for (const c of [a2, a3, b1, b2]) c.destroy();
  });

  it('refuses a newcomer with 503 when every connection is busy, and serves the busy ones', async () => {
    const s = await start(2);
    const busy = [await s.busy(vm('a')), await s.busy(vm('b'))];
    const { c, answer } = await s.attempt(vm('c'));
    expect(answer.status).toBe(503);
    expect(answer.headers['connection']).toBe('close');
    expect(JSON.stringify(answer.json)).toMatch(/none is idle/);
    await c.closed;
    s.releaseAll();
    for (const b of busy) expect((await b.next()).status).toBe(200);
    for (const b of busy) b.destroy();
  });

  it("never closes a VM's connection for a peer in no VM: the rest of the socket is reserved for VMs", async () => {
    const s = await start(3);
    const held = [await s.idle(vm('a')), await s.idle(vm('a')), await s.idle(vm('b'))];
    const { c, answer } = await s.attempt(outside(1000));
    expect(answer.status).toBe(503);
    await c.closed;
    for (const h of held) expect(await stillOpen(h)).toBe(true);
    for (const h of held) h.destroy();
  });
});

describe('holders', () => {
  it('a holder at its limit recycles its own oldest idle connection, or is refused when all are busy', async () => {
    const s = await start(16);
    const a1 = await s.idle(vm('a', 2));
    const a2 = await s.idle(vm('a', 2));
    const { c: a3, answer } = await s.attempt(vm('a', 2));
    expect(answer.status).toBe(200);
    await a1.closed;
    expect(await stillOpen(a2)).toBe(true);
    a2.destroy();
    a3.destroy();
    await waitUntil(() => s.server.budget.size === 0, 'the server to let go of the closed connections');

    const busy = [await s.busy(vm('a', 2)), await s.busy(vm('a', 2))];
    const refused = await s.attempt(vm('a', 2));
    expect(refused.answer.status).toBe(503);
    expect(JSON.stringify(refused.answer.json)).toMatch(/VM \\"a\\" already holds 2 connections/);
    s.releaseAll();
    for (const b of busy) b.destroy();
  });

  it('peers in no VM get one answer per connection and share a budget of their own', async () => {
    const s = await start(16);
    const { c, answer } = await s.attempt(outside(1000));
    expect(answer.status).toBe(200);
    expect(answer.headers['connection']).toBe('close');
    await c.closed;

    // uid 1000 may hold 2, all uids outside VMs together 3.
    const held = [await s.busy(outside(1000)), await s.busy(outside(1000))];
    expect((await s.attempt(outside(1000))).answer.status).toBe(503);
    held.push(await s.busy(outside(1001)));
    const pool = await s.attempt(outside(1002));
    expect(pool.answer.status).toBe(503);
    expect(JSON.stringify(pool.answer.json)).toMatch(/peers in no registered VM hold 3 connections/);
    // A VM is not held back by any of it.
    expect((await s.attempt(vm('a'))).answer.status).toBe(200);
    s.releaseAll();
    for (const h of held) expect((await h.next()).headers['connection']).toBe('close');
  });
});
