// The TypeScript request client follows refusals that say when to ask again (429/503 with
// Retry-After) within its retry window, and nothing else, against a scripted HTTP server on a
// Unix socket. Retry-After counts whole seconds, so the calls that retry take a second or two.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CapgateApiError, CapgateRequestClient } from '../../runtime/client/index.ts';
import { retryAfterSeconds } from '../../runtime/client/transport.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-client-retry-'));
const ALLOW = { decision: 'allow', reason: '', decisionId: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' };

interface Answer {
  status: number;
  body: unknown;
  retryAfter?: string;
}

const refusal = (status: 429 | 503, retryAfter?: string): Answer => ({
  status,
  body: { error: { code: status === 429 ? 'vm-rate-limited' : 'overloaded', message: 'wait', hint: 'later' } },
  ...(retryAfter !== undefined ? { retryAfter } : {}),
});

let server: http.Server | undefined;
let client: CapgateRequestClient | undefined;
let asked = 0;

/** Serves the answers in turn (the last one repeats) and returns a client of it. */
async function serve(answers: Answer[], retryWithinMs?: number): Promise<CapgateRequestClient> {
  asked = 0;
  const socketPath = path.join(dir, 'request.sock');
  fs.rmSync(socketPath, { force: true });
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const a = answers[Math.min(asked++, answers.length - 1)]!;
      res.writeHead(a.status, {
        'content-type': 'application/json',
        ...(a.retryAfter !== undefined ? { 'retry-after': a.retryAfter } : {}),
      });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((resolve) => server!.listen(socketPath, resolve));
  client = new CapgateRequestClient({ socketPath, ...(retryWithinMs !== undefined ? { retryWithinMs } : {}) });
  return client;
}

afterEach(async () => {
  client?.close();
  client = undefined;
  if (server) await new Promise((r) => server!.close(r));
  server = undefined;
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('CapgateRequestClient.setMemlock and Retry-After', () => {
  it.each([429, 503] as const)('asks again after a %i with Retry-After, and returns the decision', async (status) => {
    const c = await serve([refusal(status, '1'), { status: 200, body: ALLOW }]);
    await expect(c.setMemlock(42, 4096n)).resolves.toEqual(ALLOW);
    expect(asked).toBe(2);
  });

  it('gives up with the last refusal when the next wait would end past its window', async () => {
    const c = await serve([refusal(429, '1')], 1500);
    const err = await c.setMemlock(42, 4096n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapgateApiError);
    expect(err).toMatchObject({ status: 429, code: 'vm-rate-limited', retryAfterS: 1 });
    // At 0 s and 1 s; a third wait would end at 2 s, past the 1.5 s window.
    expect(asked).toBe(2);
  });

  it.each<[string, Answer, number | undefined]>([
    ['retryWithinMs 0', refusal(429, '1'), 0],
    ['no Retry-After', refusal(503), undefined],
    ['an HTTP-date', refusal(503, 'Wed, 21 Oct 2026 07:28:00 GMT'), undefined],
    ['a wait longer than the window', refusal(503, '6'), undefined],
    [
      'a 400, even with a Retry-After',
      { status: 400, body: { error: { code: 'bad-request', message: 'no' } }, retryAfter: '1' },
      undefined,
    ],
  ])('does not ask again after %s', async (_name, first, within) => {
    const c = await serve([first, { status: 200, body: ALLOW }], within);
    await expect(c.setMemlock(42, 4096n)).rejects.toBeInstanceOf(CapgateApiError);
    expect(asked).toBe(1);
  });

  it('refuses a negative retry window', () => {
    expect(() => new CapgateRequestClient({ socketPath: path.join(dir, 'x.sock'), retryWithinMs: -1 })).toThrow(
      /retryWithinMs must be/,
    );
  });
});

describe('retryAfterSeconds', () => {
  it.each<[string | undefined, number | undefined]>([
    ['1', 1],
    [' 7 ', 7],
    ['0', 0],
    ['3600', 3600],
    ['3601', undefined],
    ['', undefined],
    ['-1', undefined],
    ['1.5', undefined],
    ['1x', undefined],
    ['Wed, 21 Oct 2026 07:28:00 GMT', undefined],
    [undefined, undefined],
  ])('%j -> %j', (value, seconds) => {
    expect(retryAfterSeconds(value)).toBe(seconds);
  });
});
