// Health of the daemon, as both sockets report it.
import type { Binding } from './policies.ts';

export interface HealthResponse {
  status: 'ok' | 'shutting-down';
  version: string;
  /** Seconds since the daemon started. */
  uptimeS: number;
  /** Admin socket only. */
  detail?: {
    policiesLoaded: number;
    vmsRegistered: number;
    bindings: Binding[];
    queueDepth: number;
    inFlight: number;
  };
}
