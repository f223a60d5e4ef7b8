// What one evaluation produced. Every failure is a deny with a machine-readable error kind.
import type { CapabilityError, LogLevel } from '../contract/types.ts';
import type { MemlockEffect } from '../capabilities/capabilities.ts';

// The kinds are the wire's: the audit and the API report them unchanged.
export { ERROR_KINDS, type ErrorKind } from '../wire/error-kinds.ts';
import type { ErrorKind } from '../wire/error-kinds.ts';

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
  /** Bytes of wasm memory the evaluation left to the garbage collector (its memory grew, so it
   * could not be recycled): what it costs after the decision (dropped-memory-cost.ts) is charged
   * to the VM that asked. Absent when none was dropped. */
  droppedMemoryBytes?: number;
}
