// libcapgate, built with AddressSanitizer and UBSan, against a fake daemon on a Unix socket that
// answers well, malformed, truncated, oversized, slowly or not at all. Every answer that is not
// the daemon's strict HTTP/JSON is a negative errno with a message, never a crash, a hang past
// the timeout, or a sanitizer report; and a mutation fuzzer drives the parsers directly.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW, answer, FakeDaemon, type FakeScript } from './helpers/fake-daemon.ts';
import { assertClean, buildSanitizedProbe, runProbe, writeFile, type ProbeRun } from './helpers/probe.ts';

let dir: string;
let probe: string;
let fake: FakeDaemon | undefined;
const TIMEOUT_MS = 1000;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-cclient-'));
  probe = buildSanitizedProbe(path.join(dir, 'build')).probe;
}, 180_000);

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Starts a fake daemon with `script` and runs `probe call` against it. */
async function callFake(script: FakeScript, extra: string[] = [], env: Record<string, string> = {}): Promise<ProbeRun> {
  const socket = path.join(dir, 'fake.sock');
  fake = await FakeDaemon.start(socket, script);
  const run = await runProbe(
    probe,
    ['call', socket, '4242', '8388608', '--timeout', String(TIMEOUT_MS), ...extra],
    env,
  );
  assertClean(run);
  return run;
}

/** Reads the request, writes `bytes`, keeps the connection open until the client closes it. */
const replies =
  (bytes: string): FakeScript =>
  async (c) => {
    if ((await c.next()) === null) return;
    c.write(bytes);
    await c.closed();
  };

/** Reads the request, writes `bytes` and closes. */
const repliesAndCloses =
  (bytes: string): FakeScript =>
  async (c) => {
    if ((await c.next()) === null) return;
    c.end(bytes);
  };

const HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n';
const ALLOW_JSON = JSON.stringify(ALLOW);
const withBody = (head: string, body = ALLOW_JSON): string =>
  `${head}content-length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;
const deny = (fields: Record<string, unknown>): string =>
  answer(200, { decision: 'deny', reason: 'r', decisionId: 'd-1', ...fields });

describe('well-formed answers', () => {
  it('sends exactly the request the daemon expects, and reads an allow', async () => {
    const run = await callFake(replies(answer(200, ALLOW)));
    expect(run.results).toEqual([
      expect.objectContaining({
        rc: 0,
        allow: 1,
        reason: '',
        decisionId: ALLOW.decisionId,
        errorKind: '',
        message: '',
      }),
    ]);
    const body = '{"targetPid":4242,"bytes":"8388608"}';
    expect(fake!.requests).toEqual([
      `POST /v1/operations/set-memlock HTTP/1.1\r\nHost: capgate\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ]);
  });

  it('sends unlimited as u64 max', async () => {
    const socket = path.join(dir, 'fake.sock');
    fake = await FakeDaemon.start(socket, replies(answer(200, ALLOW)));
    assertClean(await runProbe(probe, ['call', socket, '1', 'unlimited']));
    expect(fake.requests[0]).toContain('{"targetPid":1,"bytes":"18446744073709551615"}');
  });

  it('reads a deny with its reason and error kind', async () => {
    const run = await callFake(
      replies(answer(200, { decision: 'deny', reason: 'no-policy', decisionId: 'id-2', errorKind: 'no-policy' })),
    );
    expect(run.results[0]).toMatchObject({
      rc: 0,
      allow: 0,
      reason: 'no-policy',
      decisionId: 'id-2',
      errorKind: 'no-policy',
    });
  });

  it('decodes escapes, surrogate pairs and raw UTF-8 in strings', async () => {
    const body =
      '{"decision":"deny","reason":"caf\u00c3\u00a9 \\u00e9\\ud83d\\ude00 \\"q\\" \\\\ \\/ \\t","decisionId":"d"}';
    const run = await callFake(replies(withBody(HEAD, body)));
    expect(run.results[0]).toMatchObject({ rc: 0, reason: 'café é😀 "q" \\ / \t' });
  });

  it('skips unknown fields of every JSON kind', async () => {
    const body =
      '{"decision":"allow","extra":{"a":[1,-2.5e3,0.5,true,false,null,{"b":"c"},[]]},"reason":"","n":-0,"decisionId":"d","o":{}}';
    const run = await callFake(replies(withBody(HEAD, body)));
    expect(run.results[0]).toMatchObject({ rc: 0, allow: 1, decisionId: 'd' });
  });

  it('reads an answer that arrives a byte at a time', async () => {
    const run = await callFake(
      async (c) => {
        if ((await c.next()) === null) return;
        await c.trickle(answer(200, ALLOW), 1, 1);
        await c.closed();
      },
      ['--timeout', '20000'],
    );
    expect(run.results[0]).toMatchObject({ rc: 0, allow: 1 });
  });
});

describe('connections: keep-alive and close, as the daemon chooses', () => {
  it('keeps the connection for the next call when the answer allows it', async () => {
    const run = await callFake(
      async (c) => {
        while ((await c.next()) !== null) c.write(answer(200, ALLOW));
      },
      ['--repeat', '3'],
    );
    expect(run.results.map((r) => r.rc)).toEqual([0, 0, 0]);
    expect(fake!.connections).toBe(1);
    expect(fake!.requests).toHaveLength(3);
  });

  it('opens a new connection after an answer with Connection: close', async () => {
    const run = await callFake(repliesAndCloses(answer(200, ALLOW, { close: true })), ['--repeat', '2']);
    expect(run.results.map((r) => r.rc)).toEqual([0, 0]);
    expect(fake!.connections).toBe(2);
  });

  it('reconnects when the daemon closed an idle kept connection', async () => {
    const run = await callFake(repliesAndCloses(answer(200, ALLOW)), ['--repeat', '2']);
    expect(run.results.map((r) => r.rc)).toEqual([0, 0]);
    expect(fake!.connections).toBe(2);
  });

  it('retries once, on a new connection, a request the daemon dropped as it closed a kept connection', async () => {
    const run = await callFake(
      async (c, index) => {
        if ((await c.next()) === null) return;
        c.write(answer(200, ALLOW));
        if (index > 0) return void (await c.closed());
        await c.next(); // the second request arrives on the kept connection...
        c.socket.destroy(); // ...and the daemon closes without answering it
      },
      ['--repeat', '2'],
    );
    expect(run.results.map((r) => r.rc)).toEqual([0, 0]);
    expect(fake!.connections).toBe(2);
    expect(fake!.requests).toHaveLength(3);
  });

  it('does not retry on a fresh connection: closed without an answer is ECONNRESET', async () => {
    const run = await callFake(async (c) => {
      await c.next();
      c.socket.destroy();
    });
    expect(run.results[0]).toMatchObject({
      rc: -104,
      errno: 'ECONNRESET',
      message: expect.stringContaining('without answering'),
    });
    expect(fake!.connections).toBe(1);
  });
});

/** Answers each request with the next of `answers` (the last one repeats), on whichever connection it came. */
const answersInTurn = (...answers: string[]): FakeScript => {
  let n = 0;
  return async (c) => {
    for (;;) {
      if ((await c.next()) === null) return;
      const bytes = answers[Math.min(n++, answers.length - 1)]!;
      if (bytes.includes('connection: close\r\n')) return c.end(bytes);
      c.write(bytes);
    }
  };
};

const refusal = (status: 429 | 503, retryAfter: string | null, o: { close?: boolean } = {}): string =>
  answer(
    status,
    { error: { code: status === 429 ? 'vm-rate-limited' : 'overloaded', message: 'wait', hint: 'retry later' } },
    { reason: 'X', close: o.close, extraHeaders: retryAfter === null ? '' : `retry-after: ${retryAfter}\r\n` },
  );

describe('429 and 503 with Retry-After: asked again within the deadline', () => {
  // Waits of 1 s (Retry-After's unit), so these calls take 3 s: the timeouts give that room.
  it.each<[number, string]>([
    [429, 'a VM held to its share'],
    [503, 'an overloaded daemon'],
  ])('HTTP %i (%s) then an allow: the call returns the allow', async (status) => {
    const run = await callFake(answersInTurn(refusal(status as 429 | 503, '1'), answer(200, ALLOW)), [
      '--timeout',
      '3000',
    ]);
    expect(run.results[0]).toMatchObject({ rc: 0, allow: 1, message: '' });
    expect(fake!.requests).toHaveLength(2);
    expect(fake!.connections).toBe(1);
  });

  it('asks again on a new connection when the refusal closed the old one', async () => {
    const run = await callFake(answersInTurn(refusal(429, '1', { close: true }), answer(200, ALLOW)), [
      '--timeout',
      '3000',
    ]);
    expect(run.results[0]).toMatchObject({ rc: 0, allow: 1 });
    expect(fake!.connections).toBe(2);
  });

  it('stops at the deadline: EAGAIN with the last answer and how often it asked', async () => {
    const run = await callFake(answersInTurn(refusal(429, '1')), ['--timeout', '2500']);
    expect(run.results[0]).toMatchObject({
      errno: 'EAGAIN',
      allow: 0,
      message: expect.stringMatching(/HTTP 429 vm-rate-limited: wait .*\(asked [23] times/),
    });
    // At 0 s and 1 s, and at 2 s if that wait still ended before 2.5 s: never a wait past the deadline.
    expect(fake!.requests.length).toBeGreaterThanOrEqual(2);
    expect(fake!.requests.length).toBeLessThanOrEqual(3);
  });

  it.each<[string, string | null]>([
    ['no Retry-After', null],
    ['a wait past the deadline', '5'],
    ['an HTTP-date', 'Wed, 21 Oct 2026 07:28:00 GMT'],
    ['not a number', '1x'],
    ['a negative number', '-1'],
    ['over an hour', '3601'],
  ])('is not asked again after %s', async (_name, retryAfter) => {
    const run = await callFake(answersInTurn(refusal(503, retryAfter), answer(200, ALLOW)), ['--timeout', '3000']);
    expect(run.results[0]).toMatchObject({ errno: 'EAGAIN', message: expect.stringContaining('HTTP 503 overloaded') });
    expect(run.results[0]!.message).not.toContain('asked');
    expect(fake!.requests).toHaveLength(1);
  });

  it('follows neither of two Retry-After fields', async () => {
    const twice = refusal(503, '1').replace('retry-after: 1\r\n', 'retry-after: 1\r\nretry-after: 1\r\n');
    const run = await callFake(answersInTurn(twice, answer(200, ALLOW)), ['--timeout', '3000']);
    expect(run.results[0]).toMatchObject({ errno: 'EAGAIN' });
    expect(fake!.requests).toHaveLength(1);
  });

  it('never asks again after other refusals, even with a Retry-After', async () => {
    const bad = answer(
      400,
      { error: { code: 'bad-request', message: 'no' } },
      { reason: 'X', extraHeaders: 'retry-after: 1\r\n' },
    );
    const run = await callFake(answersInTurn(bad, answer(200, ALLOW)), ['--timeout', '3000']);
    expect(run.results[0]).toMatchObject({ errno: 'EINVAL' });
    expect(fake!.requests).toHaveLength(1);
  });
});

const eightKiB = 'a'.repeat(9000);
const manyFields = Array.from({ length: 70 }, (_, i) => `x-${i}: y\r\n`).join('');
const deep = `${'['.repeat(100)}${']'.repeat(100)}`;

describe('hostile answers are errors with a message, never UB', () => {
  it.each<[string, string, string, FakeScript]>([
    // the head
    [
      'a malformed status code',
      'EPROTO',
      'status code',
      replies(withBody('HTTP/1.1 2OO OK\r\ncontent-type: application/json\r\n')),
    ],
    ['HTTP/2', 'EPROTO', 'status line', replies(withBody('HTTP/2 200 OK\r\ncontent-type: application/json\r\n'))],
    [
      'a status line without a reason separator',
      'EPROTO',
      'status line',
      replies(withBody('HTTP/1.1 200\r\ncontent-type: application/json\r\n')),
    ],
    [
      'a status code out of range',
      'EPROTO',
      'out of range',
      replies(withBody('HTTP/1.1 999 X\r\ncontent-type: application/json\r\n')),
    ],
    ['an interim 100 Continue', 'EPROTO', '1xx', replies(`HTTP/1.1 100 Continue\r\n\r\n${answer(200, ALLOW)}`)],
    ['an obs-fold header', 'EPROTO', 'obs-fold', replies(withBody(`${HEAD}x-a: b\r\n c\r\n`))],
    [
      'a bare LF',
      'EPROTO',
      'bare CR or LF',
      replies(withBody('HTTP/1.1 200 OK\r\ncontent-type: application/json\nx: y\r\n')),
    ],
    [
      'a bare CR',
      'EPROTO',
      'bare CR or LF',
      replies(withBody('HTTP/1.1 200 OK\r\ncontent-type: application/json\rx: y\r\n')),
    ],
    ['a NUL in a header value', 'EPROTO', 'control byte', replies(withBody(`${HEAD}x-a: b\u0000c\r\n`))],
    ['a header line without a colon', 'EPROTO', 'malformed header line', replies(withBody(`${HEAD}x-a b\r\n`))],
    ['a space before the colon', 'EPROTO', 'malformed header line', replies(withBody(`${HEAD}content-length : 5\r\n`))],
    ['no Content-Length', 'EPROTO', 'no Content-Length', replies(`${HEAD}\r\n${ALLOW_JSON}`)],
    [
      'two Content-Lengths',
      'EPROTO',
      'more than one Content-Length',
      replies(withBody(`${HEAD}content-length: ${ALLOW_JSON.length}\r\n`)),
    ],
    [
      'a signed Content-Length',
      'EPROTO',
      'malformed Content-Length',
      replies(`${HEAD}content-length: +${ALLOW_JSON.length}\r\n\r\n${ALLOW_JSON}`),
    ],
    [
      'a hexadecimal Content-Length',
      'EPROTO',
      'malformed Content-Length',
      replies(`${HEAD}content-length: 0x10\r\n\r\n${ALLOW_JSON}`),
    ],
    [
      'Transfer-Encoding: chunked',
      'EPROTO',
      'Transfer-Encoding',
      replies(`${HEAD}transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`),
    ],
    ['more than 64 header fields', 'EPROTO', 'more than 64', replies(withBody(`${HEAD}${manyFields}`))],
    [
      'a body that is not JSON by its Content-Type',
      'EPROTO',
      'not application/json',
      replies(withBody('HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n')),
    ],
    // truncated and too long
    ['a head cut off by close', 'EPROTO', 'truncated', repliesAndCloses('HTTP/1.1 200 OK\r\ncontent-ty')],
    [
      'a body shorter than its Content-Length, then close',
      'EPROTO',
      'truncated',
      repliesAndCloses(`${HEAD}content-length: 500\r\n\r\n${ALLOW_JSON}`),
    ],
    [
      'more bytes than the Content-Length',
      'EPROTO',
      'more bytes than',
      replies(`${HEAD}content-length: 10\r\n\r\n${ALLOW_JSON}`),
    ],
    // oversized
    ['a Content-Length over 32 KiB', 'EMSGSIZE', '40000', replies(`${HEAD}content-length: 40000\r\n\r\n`)],
    ['a Content-Length of 10 digits', 'EMSGSIZE', '9999999999', replies(`${HEAD}content-length: 9999999999\r\n\r\n`)],
    ['a head over 8 KiB', 'EMSGSIZE', 'head longer than 8192', replies(withBody(`${HEAD}x-pad: ${eightKiB}\r\n`))],
    [
      'a head that never ends',
      'EMSGSIZE',
      'head longer than 8192',
      async (c) => {
        if ((await c.next()) === null) return;
        c.write('HTTP/1.1 200 OK\r\nx-endless: ');
        while (!c.socket.destroyed && c.socket.writable) {
          c.write('x'.repeat(1024));
          await new Promise((r) => setTimeout(r, 1));
        }
      },
    ],
    [
      'a reason longer than 4096 bytes',
      'EMSGSIZE',
      'reason longer than 4096',
      replies(deny({ reason: 'r'.repeat(5000) })),
    ],
    [
      'a decisionId longer than 63 bytes',
      'EMSGSIZE',
      'decisionId longer than 63',
      replies(deny({ decisionId: 'd'.repeat(64) })),
    ],
    // slow
    ['no answer at all', 'ETIMEDOUT', 'within the timeout', async (c) => void (await c.closed())],
    [
      'the head, then silence',
      'ETIMEDOUT',
      'within the timeout',
      replies(`${HEAD}content-length: 100\r\n\r\n{"decision"`),
    ],
    [
      'an answer trickling a byte every 50 ms',
      'ETIMEDOUT',
      'within the timeout',
      async (c) => {
        if ((await c.next()) === null) return;
        await c.trickle(answer(200, ALLOW), 1, 50);
      },
    ],
    // the JSON body
    ['a body that is not JSON', 'EPROTO', 'an object was expected', replies(withBody(HEAD, '<html>'))],
    ['truncated JSON', 'EPROTO', 'unterminated string', replies(withBody(HEAD, '{"decision":"allow","reason":"'))],
    ['a top-level array', 'EPROTO', 'an object was expected', replies(withBody(HEAD, `[${ALLOW_JSON}]`))],
    ['bytes after the object', 'EPROTO', 'bytes after the JSON value', replies(withBody(HEAD, `${ALLOW_JSON} x`))],
    ['two objects', 'EPROTO', 'bytes after the JSON value', replies(withBody(HEAD, `${ALLOW_JSON}${ALLOW_JSON}`))],
    ['a decision neither allow nor deny', 'EPROTO', 'neither allow nor deny', replies(deny({ decision: 'maybe' }))],
    ['a decision that is not a string', 'EPROTO', 'decision', replies(deny({ decision: true }))],
    ['a reason that is a number', 'EPROTO', 'reason', replies(deny({ reason: 5 }))],
    ['no decisionId', 'EPROTO', 'no field decisionId', replies(answer(200, { decision: 'allow', reason: '' }))],
    ['an empty decisionId', 'EPROTO', 'empty decisionId', replies(deny({ decisionId: '' }))],
    [
      'a repeated decision',
      'EPROTO',
      'repeated',
      replies(withBody(HEAD, '{"decision":"deny","decision":"allow","reason":"","decisionId":"d"}')),
    ],
    [
      'a \\u0000 in a string',
      'EPROTO',
      'NUL',
      replies(withBody(HEAD, '{"decision":"deny","reason":"a\\u0000b","decisionId":"d"}')),
    ],
    [
      'a raw control byte in a string',
      'EPROTO',
      'control byte',
      replies(withBody(HEAD, '{"decision":"deny","reason":"a\u0001b","decisionId":"d"}')),
    ],
    [
      'invalid UTF-8',
      'EPROTO',
      'malformed UTF-8',
      replies(withBody(HEAD, '{"decision":"deny","reason":"a\u00ffb","decisionId":"d"}')),
    ],
    [
      'overlong UTF-8',
      'EPROTO',
      'malformed UTF-8',
      replies(withBody(HEAD, '{"decision":"deny","reason":"a\u00c0\u00afb","decisionId":"d"}')),
    ],
    [
      'an encoded surrogate',
      'EPROTO',
      'malformed UTF-8',
      replies(withBody(HEAD, '{"decision":"deny","reason":"\u00ed\u00a0\u0080","decisionId":"d"}')),
    ],
    [
      'a lone high surrogate escape',
      'EPROTO',
      'lone high surrogate',
      replies(withBody(HEAD, '{"decision":"deny","reason":"\\ud800x","decisionId":"d"}')),
    ],
    [
      'a lone low surrogate escape',
      'EPROTO',
      'lone low surrogate',
      replies(withBody(HEAD, '{"decision":"deny","reason":"\\udc00","decisionId":"d"}')),
    ],
    [
      'an unknown escape',
      'EPROTO',
      'unknown escape',
      replies(withBody(HEAD, '{"decision":"deny","reason":"\\x41","decisionId":"d"}')),
    ],
    [
      'a malformed number',
      'EPROTO',
      "',' or '}'",
      replies(withBody(HEAD, '{"n":01,"decision":"allow","reason":"","decisionId":"d"}')),
    ],
    [
      'nesting 100 deep',
      'EPROTO',
      'deeper than 32',
      replies(withBody(HEAD, `{"x":${deep},"decision":"allow","reason":"","decisionId":"d"}`)),
    ],
    [
      'an unknown literal',
      'EPROTO',
      'unknown literal',
      replies(withBody(HEAD, '{"x":nul,"decision":"allow","reason":"","decisionId":"d"}')),
    ],
    // error answers
    [
      '503 with a malformed error body',
      'EPROTO',
      'without its error body',
      replies(answer(503, '{"error":', { reason: 'Service Unavailable' })),
    ],
    [
      '418 with an error body',
      'EPROTO',
      'short and stout',
      replies(answer(418, { error: { code: 'teapot', message: 'short and stout' } }, { reason: 'X' })),
    ],
    ['a 204 without a body', 'EPROTO', 'HTTP 204', replies('HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n')],
  ])('%s -> %s', async (_name, errno, text, script) => {
    const run = await callFake(script);
    expect(run.results).toHaveLength(1);
    const r = run.results[0]!;
    expect(r, JSON.stringify(r)).toMatchObject({ errno, allow: 0, reason: '', decisionId: '' });
    expect(r.rc).toBeLessThan(0);
    expect(r.message).toContain(text);
    // The configured 1 s, not the default 5 s (the upper bound is that distinction, not speed).
    if (errno === 'ETIMEDOUT') expect(r.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    if (errno === 'ETIMEDOUT') expect(r.elapsedMs).toBeLessThan(4000);
  });

  it.each<[number, string, string, string]>([
    [503, 'overloaded', 'EAGAIN', 'overloaded: the queue is full (retry after 1 s)'],
    [503, 'shutting-down', 'EAGAIN', 'shutting-down: the queue is full (retry after 1 s)'],
    [429, 'vm-rate-limited', 'EAGAIN', 'vm-rate-limited: the queue is full (retry after 1 s)'],
    [400, 'bad-request', 'EINVAL', 'bad-request: the queue is full'],
    [404, 'not-found', 'EOPNOTSUPP', 'not-found'], // ENOTSUP is EOPNOTSUPP on Linux
    [405, 'method-not-allowed', 'EOPNOTSUPP', 'method-not-allowed'],
    [500, 'internal', 'EIO', 'internal'],
  ])('HTTP %i %s -> %s with the daemon message', async (status, code, errno, text) => {
    const run = await callFake(
      replies(
        answer(
          status,
          { error: { code, message: 'the queue is full', hint: 'retry after 1 s' } },
          { reason: 'X', extraHeaders: 'retry-after: 1\r\n' },
        ),
      ),
    );
    expect(run.results[0]).toMatchObject({
      errno,
      allow: 0,
      message: expect.stringContaining(`HTTP ${status} ${text}`),
    });
  });
});

describe('configuration', () => {
  it('takes the socket from $CAPGATE_REQUEST_SOCKET when none is given', async () => {
    const socket = path.join(dir, 'fake.sock');
    fake = await FakeDaemon.start(socket, replies(answer(200, ALLOW)));
    const run = await runProbe(probe, ['call', '-', '7', '4096'], { CAPGATE_REQUEST_SOCKET: socket });
    assertClean(run);
    expect(run.results[0]).toMatchObject({ rc: 0, allow: 1 });
  });

  it('capgate_set_memlock reads $CAPGATE_REQUEST_SOCKET at load and asks for Connection: close', async () => {
    const socket = path.join(dir, 'fake.sock');
    fake = await FakeDaemon.start(socket, repliesAndCloses(answer(200, ALLOW, { close: true })));
    const run = await runProbe(probe, ['call', '/nowhere', '7', '4096', '--oneshot', '--repeat', '2'], {
      CAPGATE_REQUEST_SOCKET: socket,
    });
    assertClean(run);
    expect(run.results.map((r) => r.rc)).toEqual([0, 0]);
    expect(fake.requests[0]).toContain('\r\nConnection: close\r\n');
  });

  it('refuses a socket path longer than 107 bytes', async () => {
    const run = await runProbe(probe, ['call', `/${'x'.repeat(120)}`, '7', '4096']);
    assertClean(run);
    expect(run.results[0]).toMatchObject({ rc: -36, errno: 'ENAMETOOLONG', stage: 'new' });
  });

  it.each([
    ['a socket that does not exist', (): string => path.join(dir, 'missing.sock'), 'ENOENT', 'is capgate running'],
    [
      'a file that is not a socket',
      (): string => writeFile(dir, 'plain-file', 'x'),
      'ECONNREFUSED',
      'is capgate running',
    ],
  ])('%s -> %s', async (_name, socket, errno, text) => {
    const run = await runProbe(probe, ['call', socket(), '7', '4096']);
    assertClean(run);
    expect(run.results[0]).toMatchObject({ errno, message: expect.stringContaining(text) });
  });

  it('refuses a pid that is not positive, without connecting', async () => {
    const socket = path.join(dir, 'fake.sock');
    fake = await FakeDaemon.start(socket, replies(answer(200, ALLOW)));
    const run = await runProbe(probe, ['call', socket, '0', '4096']);
    assertClean(run);
    expect(run.results[0]).toMatchObject({ errno: 'EINVAL', message: expect.stringContaining('positive') });
    expect(fake.connections).toBe(0);
  });
});

describe('the parsers under a mutation fuzzer (ASan + UBSan, exact-size buffers)', () => {
  const answers: Array<[string, string]> = [
    ['allow', answer(200, ALLOW)],
    [
      'deny',
      answer(
        200,
        {
          decision: 'deny',
          reason: 'set-memlock-failed: not-permitted \u00e9\u{1f600}',
          decisionId: ALLOW.decisionId,
          errorKind: 'trap',
          extra: [1, { a: null }],
        },
        { close: true },
      ),
    ],
    [
      'escapes',
      withBody(HEAD, '{"decision":"deny","reason":"\\u00e9\\ud83d\\ude00\\n\\"","decisionId":"d","n":-1.5e+3}'),
    ],
    [
      'error',
      answer(
        503,
        { error: { code: 'overloaded', message: 'queue full', hint: 'retry' } },
        { reason: 'Service Unavailable', extraHeaders: 'retry-after: 1\r\n' },
      ),
    ],
  ];

  it.each(answers)('mutants of the %s answer never crash the parsers', async (name, bytes) => {
    const file = writeFile(dir, `answer-${name}`, bytes);
    for (const seed of [1, 2, 3]) {
      const run = await runProbe(probe, ['fuzz', String(seed * 7919), '60000', file]);
      assertClean(run);
      const summary = JSON.parse(run.stdout) as {
        iterations: number;
        headsOk: number;
        decisionsOk: number;
        errorBodiesOk: number;
        rejected: number;
      };
      expect(summary.iterations).toBe(60000);
      // The fuzzer reaches both sides: mutants the parsers accept and mutants they refuse.
      expect(summary.rejected).toBeGreaterThan(1000);
      expect(summary.headsOk).toBeGreaterThan(1000);
      if (name === 'error') expect(summary.errorBodiesOk).toBeGreaterThan(100);
      else expect(summary.decisionsOk).toBeGreaterThan(100);
    }
  });
});
