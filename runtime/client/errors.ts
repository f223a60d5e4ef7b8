// What a capgate client call can fail with: the daemon's typed error, or no daemon at all.
import type { ErrorCode, WrongSocketKind } from '../wire/index.ts';

/** The daemon answered with a 4xx/5xx error body. */
export class CapgateApiError extends Error {
  override readonly name = 'CapgateApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'unexpected-response',
    message: string,
    readonly hint?: string,
    readonly kind?: string,
    /** From Retry-After: 503 (overloaded, not-ready) and 429 (vm-rate-limited): retry after this many seconds. */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

/** The socket could not be reached or the connection broke. */
export class CapgateConnectionError extends Error {
  override readonly name = 'CapgateConnectionError';
  constructor(
    readonly socketPath: string,
    /** errno code such as ENOENT, ECONNREFUSED, EACCES, ECONNRESET. */
    readonly errno: string | undefined,
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

export function connectionHint(errno: string | undefined, socketPath: string): string {
  switch (errno) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return `no daemon is listening on ${socketPath}: start it with \`capgate serve\` or pass the right socket path`;
    case 'EACCES':
      return `permission denied on ${socketPath}: the admin socket is 0600; run as its owner (usually root)`;
    default:
      return 'check that the daemon is running and the socket path is right';
  }
}

/** The socket that answered, when a call reached the other capgate socket (admin vs request). */
export function wrongSocket(e: unknown): WrongSocketKind | undefined {
  if (!(e instanceof CapgateApiError) || e.code !== 'not-found') return undefined;
  return e.kind === 'admin-socket' || e.kind === 'request-socket' ? e.kind : undefined;
}
