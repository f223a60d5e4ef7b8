// The one error body every capgate endpoint returns on 4xx/5xx.
import { ERROR_CODES, type ErrorCode } from './error-codes.ts';
import { isJsonObject } from './json-object.ts';
import type { ErrorBody } from './schemas/errors.ts';

export { ERROR_CODES, type ErrorCode };

/**
 * `error.kind` of a 404 for a path the socket does not serve, naming the socket that answered:
 * a client that reached the wrong one (admin command on the request socket, or the other way
 * round) can say so instead of "no route".
 */
export type WrongSocketKind = 'admin-socket' | 'request-socket';

export const HTTP_STATUS_OF: Readonly<Record<ErrorCode, number>> = Object.freeze({
  'bad-request': 400,
  'invalid-policy': 422,
  'unsupported-media-type': 415,
  'payload-too-large': 413,
  'not-found': 404,
  'method-not-allowed': 405,
  conflict: 409,
  'invalid-anchor': 422,
  forbidden: 403,
  overloaded: 503,
  'vm-rate-limited': 429,
  'not-ready': 503,
  'compiler-unavailable': 503,
  'shutting-down': 503,
  internal: 500,
});

export function isErrorBody(value: unknown): value is ErrorBody {
  if (!isJsonObject(value)) return false;
  const e = value.error;
  return isJsonObject(e) && typeof e.code === 'string' && typeof e.message === 'string';
}
