// The request head parser's two ways (request-head.ts): a common head read from its bytes with
// the connection's strings (request-head-fast.ts), everything else by the string-based parser.
// The head parser is a security boundary: the fast path must accept nothing the string-based
// parser refuses and read every head it accepts the same way, also when the connection's
// previous head left strings of the same length behind. Compared here on valid heads and on
// heads mutated byte by byte (seeded), with one connection's strings across all of them; the
// refusals over a real socket are in lean-http.test.ts.
import { describe, expect, it } from 'vitest';
import { parseRequestHead, type HeadParse } from '../../runtime/server/http/lean/request-head.ts';
import { fastRequestHead, HeadStrings } from '../../runtime/server/http/lean/request-head-fast.ts';

const MAX = 1024;

const VALID = [
  'POST /v1/set-memlock HTTP/1.1\r\nhost: capgate\r\ncontent-type: application/json\r\ncontent-length: 45\r\n\r\n',
  'GET /v1/health HTTP/1.1\r\n\r\n',
  'GET /a?b=c&d=e?f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  'POST /x HTTP/1.1\r\nContent-Length:7\r\nExpect: 100-continue\r\nX-A:\t spaced \t\r\n\r\n',
  'GET /x HTTP/1.1\r\nconnection: Keep-Alive, CLOSE\r\n__proto__: a\r\nconstructor: b\r\n\r\n',
  'PATCH /~!$&\'()*+,;=:@%20"[] HTTP/1.1\r\nx-obs: caf\xe9\xff\r\nx-empty:\r\n\r\n',
  'GET /x HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n',
  'GET /x HTTP/1.1\r\na: 1\r\nA: 2\r\n\r\n',
];

/** The parse as plain data: headers as their entries in order (toEqual alone ignores key order). */
function plain(p: HeadParse): unknown {
  if (p.kind !== 'head') return p;
  return { ...p.head, headers: Object.entries(p.head.headers) };
}

/** mulberry32: the same mutations at every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes that matter to the grammar (and some that do not). */
const INTERESTING = [
  0, 9, 10, 13, 32, 0x21, 0x22, 0x23, 0x2c, 0x2f, 0x30, 0x39, 0x3a, 0x3f, 0x41, 0x5a, 0x61, 0x7f, 0x80, 0xff,
];

function mutate(base: Buffer, next: () => number): Buffer {
  const bytes = [...base];
  const edits = 1 + Math.floor(next() * 3);
  for (let e = 0; e < edits; e++) {
    // Within the head (before its final CRLF CRLF), so that most mutants are complete heads.
    const at = Math.floor(next() * (bytes.length - 4));
    const byte = INTERESTING[Math.floor(next() * INTERESTING.length)]!;
    const kind = next();
    if (kind < 0.6) bytes[at] = byte;
    else if (kind < 0.8) bytes.splice(at, 0, byte);
    else bytes.splice(at, 1);
  }
  return Buffer.from(bytes);
}

describe('request head: the fast path and the string-based parser agree', () => {
  it('reads every valid head the same way, and takes the common ones itself', () => {
    const strings = new HeadStrings();
    for (const text of VALID) {
      const buf = Buffer.from(text, 'latin1');
      expect(plain(parseRequestHead(buf, 0, MAX, strings)), text).toEqual(plain(parseRequestHead(buf, 0, MAX)));
    }
    // Not vacuous: the request socket's own head, an empty one, a query, OWS and obs-text go the fast way.
    for (const text of [VALID[0]!, VALID[1]!, VALID[2]!, VALID[3]!, VALID[5]!]) {
      const buf = Buffer.from(text, 'latin1');
      expect(fastRequestHead(buf, buf.indexOf('\r\n\r\n'), strings), text).not.toBeNull();
    }
    // A repeated field (joined) and Transfer-Encoding (refused) are left to the string-based parser.
    for (const text of [VALID[6]!, VALID[7]!, 'POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n']) {
      const buf = Buffer.from(text, 'latin1');
      expect(fastRequestHead(buf, buf.indexOf('\r\n\r\n'), strings), text).toBeNull();
    }
  });

  it('gives a mutated head (bad bytes, bare CR/LF, NUL, folds, lost colons, bad versions) the same result, refusal included', () => {
    const next = random(20261205);
    const strings = new HeadStrings();
    let accepted = 0;
    let refused = 0;
    for (let n = 0; n < 20_000; n++) {
      const base = Buffer.from(VALID[n % VALID.length]!, 'latin1');
      // Every other one after its base: the connection's strings then hold same-length strings of other bytes.
      if (n % 2 === 0) parseRequestHead(base, 0, MAX, strings);
      const buf = mutate(base, next);
      const full = parseRequestHead(buf, 0, MAX);
      const fast = parseRequestHead(buf, 0, MAX, strings);
      expect(plain(fast), JSON.stringify(buf.toString('latin1'))).toEqual(plain(full));
      if (full.kind === 'head') accepted++;
      else if (full.kind === 'refused') refused++;
    }
    // Both sides of the boundary were exercised.
    expect(accepted).toBeGreaterThan(2000);
    expect(refused).toBeGreaterThan(2000);
  });

  it('never hands out a string of the previous head for other bytes of the same length', () => {
    const strings = new HeadStrings();
    const a = parseRequestHead(Buffer.from('GET /aa HTTP/1.1\r\nx-k: v1\r\n\r\n', 'latin1'), 0, MAX, strings);
    const b = parseRequestHead(Buffer.from('PUT /ab HTTP/1.1\r\nX-J: v2\r\n\r\n', 'latin1'), 0, MAX, strings);
    expect(a.kind === 'head' && [a.head.method, a.head.path, Object.entries(a.head.headers)]).toEqual([
      'GET',
      '/aa',
      [['x-k', 'v1']],
    ]);
    expect(b.kind === 'head' && [b.head.method, b.head.path, Object.entries(b.head.headers)]).toEqual([
      'PUT',
      '/ab',
      [['x-j', 'v2']],
    ]);
  });

  it('reuses the previous head’s strings for the same bytes (no string made per request)', () => {
    const strings = new HeadStrings();
    const text = VALID[0]!;
    const first = parseRequestHead(Buffer.from(text, 'latin1'), 0, MAX, strings);
    const second = parseRequestHead(Buffer.from(text.replace('45', '46'), 'latin1'), 0, MAX, strings);
    if (first.kind !== 'head' || second.kind !== 'head') throw new Error('both heads are valid');
    expect(second.head.contentLength).toBe(46);
    // Same string objects, not equal copies: what the reuse is for.
    expect(Object.is(first.head.method, second.head.method)).toBe(true);
    expect(Object.is(first.head.path, second.head.path)).toBe(true);
    expect(Object.is(first.head.headers['content-type'], second.head.headers['content-type'])).toBe(true);
  });

  it('refuses heads past the size limit and split heads the same way with the fast path on', () => {
    const strings = new HeadStrings();
    const big = Buffer.from(`GET /x HTTP/1.1\r\na: ${'x'.repeat(2000)}\r\n\r\n`, 'latin1');
    const r = parseRequestHead(big, 0, MAX, strings);
    expect(r.kind === 'refused' && r.reply.status).toBe(431);
    const head = Buffer.from(VALID[0]!, 'latin1');
    for (let cut = 1; cut < head.length; cut++) {
      const p = parseRequestHead(head.subarray(0, cut), 0, MAX, strings);
      expect(p.kind, `cut at ${cut}`).toBe('incomplete');
    }
  });
});
