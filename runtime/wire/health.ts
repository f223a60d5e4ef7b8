// Health of the daemon, as both sockets report it.
import type { Binding } from './policies.ts';

export interface HealthResponse {
  /** `degraded`: serving, but part of it cannot work on this host; `problems` says what and why. */
  status: 'ok' | 'degraded' | 'shutting-down';
  /** Present when degraded: each problem and what to do about it. */
  problems?: string[];
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
