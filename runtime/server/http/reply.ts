// What a route handler returns: a typed value the HTTP layer serialises. Failures are values
// too (ErrorBody + status from the wire), never exceptions crossing the handler boundary.
import type http from 'node:http';
import { STATUS_CODES } from 'node:http';
import { HTTP_STATUS_OF, JSON_CONTENT_TYPE, type ErrorBody, type ErrorCode } from '../../wire/index.ts';
import { flatJsonBytes } from '../../store/flat-json.ts';

export type Reply =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'raw'; status: number; contentType: string; body: Buffer | string };

export function ok(body: unknown, status = 200): Reply {
  return { kind: 'json', status, body };
}

export function fail(
  code: ErrorCode,
  message: string,
  hint?: string,
  extra: { kind?: string; headers?: Record<string, string> } = {},
): Reply {
  const body: ErrorBody = {
    error: {
      code,
      message,
      ...(hint !== undefined ? { hint } : {}),
      ...(extra.kind !== undefined ? { kind: extra.kind } : {}),
    },
  };
  return { kind: 'json', status: HTTP_STATUS_OF[code], body, ...(extra.headers ? { headers: extra.headers } : {}) };
}

/** A reply as HTTP: status, headers and payload, the same for both servers. */
export interface ReplyWire {
  status: number;
  headers: Record<string, string | number>;
  payload: string | Buffer;
}

export function replyWire(reply: Reply, closeConnection: boolean): ReplyWire {
  const payload = reply.kind === 'json' ? JSON.stringify(reply.body) : reply.body;
  const headers: Record<string, string | number> = {
    'content-type': reply.kind === 'json' ? JSON_CONTENT_TYPE : reply.contentType,
    'content-length': Buffer.byteLength(payload),
    ...(reply.kind === 'json' ? reply.headers : {}),
  };
  if (closeConnection) headers['connection'] = 'close';
  return { status: reply.status, headers, payload };
}

export function send(res: http.ServerResponse, reply: Reply, closeConnection = false): void {
  if (res.headersSent || res.destroyed) return;
  const wire = replyWire(reply, closeConnection);
  res.writeHead(wire.status, wire.headers);
  res.end(wire.payload);
}

/**
 * The whole response message (status line, headers, body) for a single socket write.
 * `keepAliveS` announces the idle timeout of a kept connection, as node:http does, so that
 * clients (Node's agent) retire an idle socket before the server closes it under them.
 */
export function encodeReply(reply: Reply, closeConnection: boolean, keepAliveS?: number): string | Buffer {
  if (reply.kind === 'json' && reply.headers === undefined) return encodeJsonReply(reply, closeConnection, keepAliveS);
  const wire = replyWire(reply, closeConnection);
  if (!closeConnection && keepAliveS !== undefined) wire.headers['keep-alive'] = `timeout=${keepAliveS}`;
  let head = `HTTP/1.1 ${wire.status} ${STATUS_CODES[wire.status] ?? 'Unknown'}\r\n`;
  for (const name in wire.headers) head += `${name}: ${wire.headers[name]}\r\n`;
  head += '\r\n';
  // Header bytes are ASCII, so one utf8 string carries a string payload unchanged.
  return typeof wire.payload === 'string'
    ? head + wire.payload
    : Buffer.concat([Buffer.from(head, 'latin1'), wire.payload]);
}

/** The status line and content-type of a JSON reply, up to the content-length's value, per status. */
const jsonHeads = new Map<number, string>();
/** What follows the content-length's value, per keep-alive timeout announced. */
const keepAliveEnds = new Map<number, string>();

/**
 * encodeReply for a JSON reply without extra headers (every decision's answer): the same bytes,
 * written once into one buffer (flat-json.ts writes the body), instead of a header object, a
 * string per header, and string pieces that writing to the socket copied flat again.
 */
function encodeJsonReply(
  reply: Extract<Reply, { kind: 'json' }>,
  closeConnection: boolean,
  keepAliveS: number | undefined,
): string | Buffer {
  let head = jsonHeads.get(reply.status);
  if (head === undefined) {
    head = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? 'Unknown'}\r\ncontent-type: ${JSON_CONTENT_TYPE}\r\ncontent-length: `;
    jsonHeads.set(reply.status, head);
  }
  const end = closeConnection
    ? '\r\nconnection: close\r\n\r\n'
    : keepAliveS !== undefined
      ? keepAliveEnd(keepAliveS)
      : '\r\n\r\n';
  const json = flatJsonBytes(reply.body);
  if (json === null) {
    const payload = JSON.stringify(reply.body);
    return head + Buffer.byteLength(payload) + end + payload;
  }
  const length = String(json.length);
  // Head, length and end are ASCII: one byte each per character.
  const out = Buffer.allocUnsafe(head.length + length.length + end.length + json.length);
  let at = out.write(head, 0, 'latin1');
  at += out.write(length, at, 'latin1');
  at += out.write(end, at, 'latin1');
  json.buf.copy(out, at, 0, json.length);
  return out;
}

function keepAliveEnd(keepAliveS: number): string {
  let end = keepAliveEnds.get(keepAliveS);
  if (end === undefined) {
    end = `\r\nkeep-alive: timeout=${keepAliveS}\r\n\r\n`;
    if (keepAliveEnds.size < 16) keepAliveEnds.set(keepAliveS, end);
  }
  return end;
}
