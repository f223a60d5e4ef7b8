// What one evaluation produced. Every failure is a deny with a machine-readable error kind.
import type { CapabilityError, LogLevel } from '../contract/types.ts';
import type { MemlockEffect } from '../capabilities/capabilities.ts';

export const ERROR_KINDS = [
  'invalid-module', // not a component, malformed, wrong exports/types, oversized
  'disallowed-import', // imports anything but capgate:policy/{host,types}@1.0.0
  'fuel-exhausted', // instruction budget used up
  'memory-limit', // memory.grow refused (and the guest trapped) or initial memory too large
  'trap', // unreachable, stack overflow, division by zero, ...
  'timeout', // wall-clock deadline passed; the worker was terminated
  'invalid-abi', // out-of-bounds pointer/length, bad discriminant, bad UTF-8, oversized string
  'quota-exceeded', // more capability calls than allowed in one evaluation
  'host-error', // a capability implementation or the engine itself failed
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export type CapabilityCall =
  | {
      op: 'set-memlock';
      pid: number;
      bytes: bigint;
      result: 'ok' | CapabilityError;
      detail?: string;
      /** Present when the call reached prlimit: the limit before, and the target's start time. */
      effect?: MemlockEffect;
      /** The worker stopped during the call (deadline, crash): prlimit may or may not have acted. */
      unfinished?: true;
      /** How undoing it went, for a decision other than allow ("undone", "undo failed: EPERM", ...). */
      undo?: string;
    }
  | { op: 'query-vm-identity'; pid: number; result: 'some' | 'none'; vmUuid?: string };

export interface LogLine {
  level: LogLevel;
  message: string;
}

export interface Outcome {
  decision: 'allow' | 'deny';
  /** The policy's deny reason; for failures, the error kind. Empty for allow. */
  reason: string;
  errorKind?: ErrorKind;
  /** Human-readable detail of the failure. */
  errorDetail?: string;
  fuelUsed: number;
  durationUs: number;
  capabilityCalls: CapabilityCall[];
  logs: LogLine[];
  /** Log lines beyond limits.maxLogLines: counted, not stored. Absent when none were dropped. */
  droppedLogLines?: number;
}
