// The common request head read straight from its bytes, for the request socket's per-decision
// path: every byte checked in one pass, and no string made for what the connection's previous
// head already had (a keep-alive client sends the same head at every request, but for its
// Content-Length). The string-based parser (request-head.ts) took ~1 KB of garbage per request:
// the head as a string, its lines, each match and slice.
// This path only ever accepts: a head it does not take as it is (anything malformed, but also a
// repeated field, Transfer-Encoding, more fields than it remembers) goes to the string-based
// parser, which decides and says why. What it accepts, that parser accepts with the same result
// (request-head-fast.test.ts compares them on valid and mutated heads).
import { hasToken, HeaderFields, type RequestHead } from './head-fields.ts';

const CR = 13;
const LF = 10;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const SLASH = 0x2f;
const QUESTION = 0x3f;
const HASH = 0x23;

/** tchar of RFC 9110 5.6.2: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = TCHAR[c + 0x20] = 1;

/** A field value's bytes: HTAB, visible ASCII, space, obs-text (no CR, LF, NUL, DEL or other controls). */
const FIELD_BYTE = new Uint8Array(256);
FIELD_BYTE[HTAB] = 1;
for (let c = 0x20; c <= 0x7e; c++) FIELD_BYTE[c] = 1;
for (let c = 0x80; c <= 0xff; c++) FIELD_BYTE[c] = 1;

/** " HTTP/1." after the target. */
const VERSION_PREFIX = [SP, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e];

/** Header fields whose names the fast path leaves to the string-based parser. */
const TRANSFER_ENCODING = 'transfer-encoding';

/** Fields remembered per connection; a head with more goes the string-based way. */
const MAX_FIELDS = 16;
/** Slots: method, target, then each field's name (lower case) and value. */
const SLOTS = 2 + 2 * MAX_FIELDS;

/**
 * The strings of a connection's previous head, by position: a string whose bytes come again at
 * the same position is reused, not made again. One per connection, so that nothing one peer sent
 * is ever handed to another.
 */
export class HeadStrings {
  readonly #slots: Array<string | undefined> = new Array<string | undefined>(SLOTS).fill(undefined);

  /** The latin1 string of buf[a, b) (lower-cased: ASCII letters, for a field name). */
  take(slot: number, buf: Buffer, a: number, b: number, lower: boolean): string {
    const kept = this.#slots[slot];
    if (kept !== undefined && kept.length === b - a) {
      let j = 0;
      for (; j < kept.length; j++) {
        let c = buf[a + j]!;
        if (lower && c >= 0x41 && c <= 0x5a) c += 0x20;
        if (kept.charCodeAt(j) !== c) break;
      }
      if (j === kept.length) return kept;
    }
    const s = lower ? buf.toString('latin1', a, b).toLowerCase() : buf.toString('latin1', a, b);
    this.#slots[slot] = s;
    return s;
  }
}

/**
 * The head in buf[0, end) (`end`: where its final CRLF CRLF starts), or null when the
 * string-based parser must decide (it refuses, or takes what this path does not).
 */
export function fastRequestHead(buf: Buffer, end: number, strings: HeadStrings): RequestHead | null {
  // Request line: method SP origin-form target SP "HTTP/1." (0|1), then CRLF or the end.
  let i = 0;
  while (i < end && TCHAR[buf[i]!] === 1) i++;
  if (i === 0 || i >= end || buf[i] !== SP) return null;
  const methodEnd = i++;
  if (buf[i] !== SLASH) return null;
  const targetStart = i;
  let query = -1;
  for (; i < end; i++) {
    const b = buf[i]!;
    if (b < 0x21 || b > 0x7e || b === HASH) break;
    if (b === QUESTION && query < 0) query = i;
  }
  const targetEnd = i;
  if (i + VERSION_PREFIX.length + 1 > end) return null;
  for (let k = 0; k < VERSION_PREFIX.length; k++) if (buf[i + k] !== VERSION_PREFIX[k]) return null;
  i += VERSION_PREFIX.length;
  const minor = buf[i++]! - 0x30;
  if (minor !== 0 && minor !== 1) return null;
  if (i < end && (buf[i] !== CR || buf[i + 1] !== LF)) return null;
  i += 2;

  const method = strings.take(0, buf, 0, methodEnd, false);
  const target = strings.take(1, buf, targetStart, targetEnd, false);
  const headers = new HeaderFields() as Record<string, string>;
  let contentLength: string | undefined;
  let field = 0;
  // Header fields: name ":" OWS value OWS, each line ended by CRLF (the last one by `end`).
  while (i < end) {
    if (field === MAX_FIELDS) return null;
    const nameStart = i;
    while (i < end && TCHAR[buf[i]!] === 1) i++;
    if (i === nameStart || i >= end || buf[i] !== COLON) return null;
    const nameEnd = i++;
    let lineEnd = i;
    for (; lineEnd < end; lineEnd++) {
      const b = buf[lineEnd]!;
      if (FIELD_BYTE[b] === 1) continue;
      if (b === CR && buf[lineEnd + 1] === LF) break;
      return null;
    }
    let a = i;
    let b = lineEnd;
    while (a < b && (buf[a] === SP || buf[a] === HTAB)) a++;
    while (b > a && (buf[b - 1] === SP || buf[b - 1] === HTAB)) b--;
    const key = strings.take(2 + 2 * field, buf, nameStart, nameEnd, true);
    const value = strings.take(3 + 2 * field, buf, a, b, false);
    field++;
    i = lineEnd + 2;
    if (headers[key] !== undefined || key === TRANSFER_ENCODING) return null;
    if (key === 'content-length') {
      if (a === b) return null;
      for (let k = a; k < b; k++) if (buf[k]! < 0x30 || buf[k]! > 0x39) return null;
      contentLength = value;
    }
    headers[key] = value;
  }
  const connection = headers['connection'];
  const expect = headers['expect'];
  return {
    method,
    path: query < 0 ? target : target.slice(0, query - targetStart),
    queryString: query < 0 ? '' : target.slice(query - targetStart + 1),
    minorVersion: minor as 0 | 1,
    headers,
    contentLength: contentLength === undefined ? 0 : Number(contentLength),
    keepAlive: minor === 1 && (connection === undefined || !hasToken(connection, 'close')),
    expectContinue: expect !== undefined && hasToken(expect, '100-continue'),
    size: end + 4,
  };
}
