// Typed client of the request socket, for unprivileged requesters (libvirt in a pod).
// Who is asking is read by the daemon from the kernel; the client only names target and amount.
import {
  REQUEST_ROUTES as R,
  formatBytes,
  type DecisionResponse,
  type HealthResponse,
  type OpenApiDocument,
} from '../wire/index.ts';
import { UnixHttpTransport, type TransportOptions } from './transport.ts';

export class CapgateRequestClient {
  private readonly t: UnixHttpTransport;

  constructor(options: TransportOptions) {
    this.t = new UnixHttpTransport(options);
  }

  health(): Promise<HealthResponse> {
    return this.t.call(R.health);
  }

  /** Asks for RLIMIT_MEMLOCK of `targetPid` to be set to `bytes` (bigint, safe integer or "unlimited"). */
  setMemlock(targetPid: number, bytes: bigint | number | 'unlimited'): Promise<DecisionResponse> {
    const wire = typeof bytes === 'bigint' ? formatBytes(bytes) : bytes;
    return this.t.call(R.setMemlock, { body: { targetPid, bytes: wire } });
  }

  /** The OpenAPI 3.1 document of the request socket. */
  openapi(): Promise<OpenApiDocument> {
    return this.t.call(R.openapi);
  }

  close(): void {
    this.t.close();
  }
}
