// Strict, bounded parsing of one HTTP/1.1 request head (request line + header fields) from the
// front of a connection's buffer, synchronously. Anything outside the strict grammar is refused
// with a reply that says what to send instead: no obs-fold, no bare CR/LF, no NUL, origin-form
// targets only, one Content-Length, no Transfer-Encoding (so no chunked parsing, and no request
// smuggling through disagreeing length headers).
import { fail, type Reply } from '../reply.ts';
import { hasToken, HeaderFields, type RequestHead } from './head-fields.ts';
import { fastRequestHead, type HeadStrings } from './request-head-fast.ts';

export type { RequestHead } from './head-fields.ts';

export type HeadParse =
  | { kind: 'incomplete' /** bytes already checked, where the next call resumes */; scanned: number }
  | { kind: 'refused'; reply: Reply }
  | { kind: 'head'; head: RequestHead };

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const CR = 13;
const LF = 10;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\/[!"$-~]*) HTTP\/1\.([01])$/;
const VERSIONED_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \/[!"$-~]* HTTP\/(\d\.\d)$/;
// Visible ASCII, obs-text and inner spaces/tabs: no CR, LF, NUL or other controls.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DIGITS = /^\d+$/;

/** A 4xx/5xx refusal of the request head; `code` stays one of the wire's error codes. */
export function refuse(status: number, message: string, hint: string): Reply {
  return { ...fail('bad-request', message, hint), status };
}

const malformed = (message: string, hint = 'send a well-formed HTTP/1.1 request'): HeadParse => ({
  kind: 'refused',
  reply: refuse(400, message, hint),
});

/**
 * Parses the head at the start of `buf`. `scanned` is what a previous call already checked (so
 * a head arriving byte by byte costs linear time); errors in a partial head are found as soon
 * as their bytes arrive, not at the timeout. With the connection's `strings`, a common head is
 * read from its bytes first (request-head-fast.ts); whatever that path does not take is parsed
 * here from its text, which decides.
 */
export function parseRequestHead(
  buf: Buffer,
  scanned: number,
  maxHeaderBytes: number,
  strings?: HeadStrings,
): HeadParse {
  const end = buf.indexOf(HEAD_END, Math.max(0, scanned - 3));
  if (end < 0) return partial(buf, scanned, maxHeaderBytes);
  if (end + 4 > maxHeaderBytes) return tooLarge(maxHeaderBytes);
  if (strings !== undefined) {
    const head = fastRequestHead(buf, end, strings);
    if (head !== null) return { kind: 'head', head };
  }
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const requestLine = REQUEST_LINE.exec(lines[0]!);
  if (requestLine === null) {
    const version = VERSIONED_LINE.exec(lines[0]!);
    if (version !== null)
      return { kind: 'refused', reply: refuse(505, `HTTP/${version[1]} is not supported`, 'send HTTP/1.1') };
    return malformed(
      `malformed request line "${printable(lines[0]!)}"`,
      'send "METHOD /path HTTP/1.1" (origin-form target) followed by CRLF',
    );
  }
  const headers = new HeaderFields() as Record<string, string>;
  let contentLength: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09)
      return malformed('folded header line (obs-fold) in the request', 'send every header field on one line');
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name))
      return malformed(
        `malformed header line "${printable(line)}"`,
        'send header fields as "name: value" with CRLF line ends',
      );
    const value = trimOws(line.slice(colon + 1));
    if (!FIELD_VALUE.test(value))
      return malformed(
        `header ${name} contains a control character (CR, LF or NUL)`,
        'send header values without control characters, lines ended by CRLF',
      );
    const key = name.toLowerCase();
    if (key === 'content-length') {
      if (!DIGITS.test(value))
        return malformed(
          `Content-Length "${printable(value)}" is not a decimal number`,
          'send Content-Length as digits only',
        );
      if (contentLength !== undefined && contentLength !== value)
        return malformed('conflicting Content-Length headers', 'send one Content-Length');
      contentLength = value;
      headers[key] = value;
      continue;
    }
    const previous = headers[key];
    headers[key] = previous === undefined ? value : `${previous}, ${value}`;
  }
  if (headers['transfer-encoding'] !== undefined) {
    return {
      kind: 'refused',
      reply: refuse(
        411,
        'Transfer-Encoding is not accepted on this socket',
        'send the body in one piece with a Content-Length header (no chunked encoding)',
      ),
    };
  }
  const minorVersion = requestLine[3] === '1' ? 1 : 0;
  const connection = headers['connection'];
  const target = requestLine[2]!;
  const query = target.indexOf('?');
  return {
    kind: 'head',
    head: {
      method: requestLine[1]!,
      path: query < 0 ? target : target.slice(0, query),
      queryString: query < 0 ? '' : target.slice(query + 1),
      minorVersion,
      headers,
      contentLength: contentLength === undefined ? 0 : Number(contentLength),
      keepAlive: minorVersion === 1 && (connection === undefined || !hasToken(connection, 'close')),
      expectContinue: headers['expect'] !== undefined && hasToken(headers['expect'], '100-continue'),
      size: end + 4,
    },
  };
}

function partial(buf: Buffer, scanned: number, maxHeaderBytes: number): HeadParse {
  for (let i = Math.max(0, scanned - 1); i < buf.length; i++) {
    const b = buf[i]!;
    if (b === 0) return malformed('NUL byte in the request head');
    if (b === LF && (i === 0 || buf[i - 1] !== CR))
      return malformed('bare LF in the request head', 'send CRLF (not a bare CR or LF) at the end of every line');
    if (b === CR && i + 1 < buf.length && buf[i + 1] !== LF)
      return malformed('bare CR in the request head', 'send CRLF (not a bare CR or LF) at the end of every line');
  }
  if (buf.length >= maxHeaderBytes) return tooLarge(maxHeaderBytes);
  return { kind: 'incomplete', scanned: buf.length };
}

function tooLarge(maxHeaderBytes: number): HeadParse {
  return {
    kind: 'refused',
    reply: refuse(
      431,
      `the request head is larger than ${maxHeaderBytes} bytes`,
      'send fewer or shorter header fields',
    ),
  };
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Echoes client bytes in an error message without control characters, and bounded. */
function printable(s: string): string {
  return s.slice(0, 100).replace(/[^\x20-\x7e]/g, '?');
}
