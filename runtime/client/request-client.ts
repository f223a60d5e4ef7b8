// Typed client of the request socket, for unprivileged requesters (libvirt in a pod).
// Who is asking is read by the daemon from the kernel; the client only names target and amount.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  REQUEST_ROUTES as R,
  formatBytes,
  type DecisionResponse,
  type HealthResponse,
  type OpenApiDocument,
} from '../wire/index.ts';
import { CapgateApiError } from './errors.ts';
import { UnixHttpTransport, type TransportOptions } from './transport.ts';

export interface RequestClientOptions extends TransportOptions {
  /**
   * A set-memlock refused with a Retry-After (429: this VM used its share while others ask; 503:
   * overloaded, or the policy still compiles) is asked again after that wait, while the wait
   * ends within this many ms of the call's start (at most MAX_RETRIES times). 0: never. Default 5000.
   */
  retryWithinMs?: number;
}

export const DEFAULT_RETRY_WITHIN_MS = 5000;
/** Refusals one call follows at most, whatever the waits. */
export const MAX_RETRIES = 8;

export class CapgateRequestClient {
  private readonly t: UnixHttpTransport;
  private readonly retryWithinMs: number;

  constructor(options: RequestClientOptions) {
    this.t = new UnixHttpTransport(options);
    this.retryWithinMs = options.retryWithinMs ?? DEFAULT_RETRY_WITHIN_MS;
    if (!Number.isFinite(this.retryWithinMs) || this.retryWithinMs < 0)
      throw new RangeError(`retryWithinMs must be a number of ms >= 0, got ${options.retryWithinMs}`);
  }

  health(): Promise<HealthResponse> {
    return this.t.call(R.health);
  }

  /**
   * Asks for RLIMIT_MEMLOCK of `targetPid` to be set to `bytes` (bigint, safe integer or
   * "unlimited"). Refusals that say when to ask again are followed (see `retryWithinMs`):
   * set-memlock is idempotent, and a refused request was neither evaluated nor audited.
   */
  async setMemlock(targetPid: number, bytes: bigint | number | 'unlimited'): Promise<DecisionResponse> {
    const wire = typeof bytes === 'bigint' ? formatBytes(bytes) : bytes;
    const until = performance.now() + this.retryWithinMs;
    for (let retries = 0; ; retries++) {
      try {
        return await this.t.call(R.setMemlock, { body: { targetPid, bytes: wire } });
      } catch (err) {
        const waitMs = retryWaitMs(err, retries, until);
        if (waitMs === undefined) throw err;
        await sleep(waitMs);
      }
    }
  }

  /** The OpenAPI 3.1 document of the request socket. */
  openapi(): Promise<OpenApiDocument> {
    return this.t.call(R.openapi);
  }

  close(): void {
    this.t.close();
  }
}

/** How long to wait before asking again after `err`, or undefined: do not ask again. */
function retryWaitMs(err: unknown, retries: number, until: number): number | undefined {
  if (!(err instanceof CapgateApiError) || (err.status !== 429 && err.status !== 503)) return undefined;
  if (err.retryAfterS === undefined || retries >= MAX_RETRIES) return undefined;
  const waitMs = err.retryAfterS * 1000;
  return performance.now() + waitMs < until ? waitMs : undefined;
}
