// What a route handler returns: a typed value the HTTP layer serialises. Failures are values
// too (ErrorBody + status from the wire), never exceptions crossing the handler boundary.
import type http from 'node:http';
import { HTTP_STATUS_OF, JSON_CONTENT_TYPE, type ErrorBody, type ErrorCode } from '../../wire/index.ts';

export type Reply =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'raw'; status: number; contentType: string; body: Buffer | string };

export function ok(body: unknown, status = 200): Reply {
  return { kind: 'json', status, body };
}

export function fail(code: ErrorCode, message: string, hint?: string, extra: { kind?: string; headers?: Record<string, string> } = {}): Reply {
  const body: ErrorBody = { error: { code, message, ...(hint !== undefined ? { hint } : {}), ...(extra.kind !== undefined ? { kind: extra.kind } : {}) } };
  return { kind: 'json', status: HTTP_STATUS_OF[code], body, ...(extra.headers ? { headers: extra.headers } : {}) };
}

export function send(res: http.ServerResponse, reply: Reply, closeConnection = false): void {
  if (res.headersSent || res.destroyed) return;
  const payload = reply.kind === 'json' ? JSON.stringify(reply.body) : reply.body;
  const headers: Record<string, string | number> = {
    'content-type': reply.kind === 'json' ? JSON_CONTENT_TYPE : reply.contentType,
    'content-length': Buffer.byteLength(payload),
    ...(reply.kind === 'json' ? reply.headers : {}),
  };
  if (closeConnection) headers['connection'] = 'close';
  res.writeHead(reply.status, headers);
  res.end(payload);
}
