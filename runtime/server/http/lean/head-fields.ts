// What both request head parsers (request-head.ts, request-head-fast.ts) make: the head and its fields.

export interface RequestHead {
  method: string;
  /** Origin-form path, without the query. */
  path: string;
  /** What follows `?` in the target ('' when there is none). */
  queryString: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: 0 | 1;
  /** Lower-case names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  /** 0 when the request has no Content-Length. */
  contentLength: number;
  /** The connection may carry another request after the answer. */
  keepAlive: boolean;
  /** The client waits for `100 Continue` before it sends the body. */
  expectContinue: boolean;
  /** Bytes of the head, its final blank line included. */
  size: number;
}

/**
 * Header storage without Object.prototype behind it (a field named "constructor" or
 * "__proto__" is just a field), yet a fast-mode object: Object.create(null) costs 2 µs a request.
 */
export const HeaderFields = function HeaderFields() {} as unknown as new () => object;
HeaderFields.prototype = Object.create(null) as object;

/** Whether a comma-separated header value lists `token` (case-insensitive). */
export function hasToken(list: string, token: string): boolean {
  return list.split(',').some((t) => t.trim().toLowerCase() === token);
}
