// TypeScript mirror of the WIT contract `capgate:policy@1.0.0` (host-api/wit/policy.wit).
// The engine lifts and lowers exactly these shapes; the daemon, simulator and CLI speak them.

export const CONTRACT_PACKAGE = 'capgate:policy@1.0.0';
export const HOST_INTERFACE = 'capgate:policy/host@1.0.0';
export const TYPES_INTERFACE = 'capgate:policy/types@1.0.0';

export const OPERATIONS = ['set-memlock'] as const;
export type Operation = (typeof OPERATIONS)[number];

export const CAPABILITY_ERRORS = [
  'not-permitted',
  'no-such-process',
  'out-of-scope',
  'invalid-argument',
  'quota-exceeded',
  'internal',
] as const;
export type CapabilityError = (typeof CAPABILITY_ERRORS)[number];

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** u64 max: "unlimited" (RLIM_INFINITY) for set-memlock. */
export const MEMLOCK_UNLIMITED = 0xffff_ffff_ffff_ffffn;

export interface VmIdentity {
  uuid: string;
  name: string;
  /** s32 */
  id: number;
  labels: Array<[string, string]>;
}

export interface PolicyRequest {
  operation: Operation;
  /** Kernel-verified (SO_PEERCRED), u32. */
  requesterPid: number;
  requesterUid: number;
  targetPid: number;
  /** u64; MEMLOCK_UNLIMITED means unlimited. */
  bytes: bigint;
}

export type PolicyDecision = { kind: 'allow' } | { kind: 'deny'; reason: string };
