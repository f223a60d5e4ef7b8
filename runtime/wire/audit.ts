// One audit record per decision, and the audit query, as the admin API speaks them.
import type { CapabilityError, LogLevel, Operation, VmIdentity } from '../contract/types.ts';
import type { ErrorKind } from '../engine/outcome.ts';
import type { DaemonDenyKind } from './operations.ts';

/** RLIMIT_MEMLOCK of a process, soft and hard, in wire form (formatBytes). */
export interface AuditMemlockValue {
  soft: string;
  hard: string;
}

export type AuditCapabilityCall =
  | {
      op: 'set-memlock';
      pid: number;
      /** wire form, see formatBytes */
      bytes: string;
      result: 'ok' | CapabilityError;
      detail?: string;
      /** The limit just before the call, when it reached the kernel's prlimit. */
      before?: AuditMemlockValue;
      /** For a decision other than allow, how undoing the call went: "undone",
       * "undo failed: <errno>" or "not undone: <why>". Absent: nothing to undo. */
      undo?: string;
      /** Only in a record of a lost decision (reason decision-lost): the limit as it was at
       * the restart, before any undo; null when the process was gone. */
      limitAtRecovery?: AuditMemlockValue | null;
    }
  | { op: 'query-vm-identity'; pid: number; result: 'some' | 'none'; vmUuid?: string };

export interface AuditRecord {
  /** Monotonic sequence number; the cursor of audit queries. */
  seq: number;
  decisionId: string;
  /** ISO 8601 with milliseconds. */
  time: string;
  requester: { pid: number; uid: number; gid: number };
  /** Null when the requester is in no registered VM. */
  vm: VmIdentity | null;
  operation: Operation;
  targetPid: number;
  /** Wire form: decimal string or "unlimited". */
  bytes: string;
  /** Null when no policy ran (unknown requester, no binding). */
  policy: { name: string; revision: number; sha256: string } | null;
  decision: 'allow' | 'deny';
  reason: string;
  errorKind?: ErrorKind | DaemonDenyKind;
  errorDetail?: string;
  capabilityCalls: AuditCapabilityCall[];
  logs: Array<{ level: LogLevel; message: string }>;
  fuelUsed: number;
  /** Evaluation time in the engine. */
  durationUs: number;
  /** Time from request received to decision (queueing included). */
  totalUs: number;
}

export interface AuditQuery {
  /** ISO 8601 or epoch milliseconds, inclusive. */
  since?: string;
  /** ISO 8601 or epoch milliseconds, exclusive. */
  until?: string;
  /** VM uuid or name. */
  vm?: string;
  decision?: 'allow' | 'deny';
  /** Policy name. */
  policy?: string;
  /** 1..1000, default 100. */
  limit?: number;
  /** From a previous response's nextCursor. */
  cursor?: string;
  /** Default desc (newest first). */
  order?: 'asc' | 'desc';
}

export const AUDIT_QUERY_MAX_LIMIT = 1000;
export const AUDIT_QUERY_DEFAULT_LIMIT = 100;

export interface AuditQueryResponse {
  records: AuditRecord[];
  /** Present when more records match: pass it as `cursor` to continue. */
  nextCursor?: string;
}

export interface AuditRecordResponse {
  record: AuditRecord;
}
