// One audit record per decision, and the audit query, as the admin API speaks them.
import { Type, type Static } from '@sinclair/typebox';
import { AUDIT_QUERY_MAX_LIMIT, AUDIT_RECORD_SCHEMA_VERSION } from '../audit.ts';
import { CapabilityError, IsoTime, LogLevel, Operation, Sha256, VmIdentity, WireBytes } from './common.ts';
import { DecisionErrorKindSchema } from './operations.ts';

/** RLIMIT_MEMLOCK of a process, soft and hard, in wire form. */
const memlockValue = (description?: string) =>
  Type.Object({ soft: WireBytes, hard: WireBytes }, description !== undefined ? { description } : {});
export const AuditMemlockValue = memlockValue();
export type AuditMemlockValue = Static<typeof AuditMemlockValue>;

export const AuditCapabilityCall = Type.Union([
  Type.Object({
    op: Type.Literal('set-memlock'),
    pid: Type.Integer(),
    bytes: WireBytes,
    result: Type.Union([Type.Literal('ok'), CapabilityError]),
    detail: Type.Optional(Type.String()),
    before: Type.Optional(memlockValue("The limit just before the call, when it reached the kernel's prlimit.")),
    undo: Type.Optional(
      Type.String({
        description:
          'For a decision other than allow, how undoing the call went: "undone", "undo failed: <errno>" or "not undone: <why>". Absent: nothing to undo.',
      }),
    ),
    limitAtRecovery: Type.Optional(
      Type.Union([AuditMemlockValue, Type.Null()], {
        description:
          'Only in a record of a lost decision (errorKind decision-lost): the limit as it was at the restart, before any undo; null when the process was gone.',
      }),
    ),
  }),
  Type.Object({
    op: Type.Literal('query-vm-identity'),
    pid: Type.Integer(),
    result: Type.Union([Type.Literal('some'), Type.Literal('none')]),
    vmUuid: Type.Optional(Type.String()),
  }),
]);
export type AuditCapabilityCall = Static<typeof AuditCapabilityCall>;

export const AuditRecord = Type.Object({
  schemaVersion: Type.Integer({
    minimum: 1,
    description: `Version of this record's shape (now ${AUDIT_RECORD_SCHEMA_VERSION}). Records written before the field existed have the shape of version 1 and are reported as such.`,
  }),
  seq: Type.Integer({ minimum: 1, description: 'Monotonic sequence number; the cursor of audit queries.' }),
  decisionId: Type.String(),
  time: IsoTime(),
  requester: Type.Object({ pid: Type.Integer(), uid: Type.Integer(), gid: Type.Integer() }),
  vm: Type.Union([VmIdentity, Type.Null()], { description: 'Null when the requester is in no registered VM.' }),
  operation: Operation,
  targetPid: Type.Integer({ description: "The target as the client sent it: a pid of the requester's pid namespace." }),
  targetHostPid: Type.Optional(
    Type.Integer({
      minimum: 1,
      description:
        "The daemon's pid for the target, when the requester is in a pid namespace below the daemon's and the daemon translated it: what the policy was asked about and the capabilities acted on.",
    }),
  ),
  bytes: WireBytes,
  policy: Type.Union(
    [
      Type.Object({
        name: Type.String(),
        revision: Type.Integer(),
        sha256: Sha256,
        keyId: Type.Optional(Type.String({ description: "The deciding revision's signing key (absent: unsigned)." })),
      }),
      Type.Null(),
    ],
    { description: 'Null when no policy ran (unknown requester, no binding).' },
  ),
  decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  reason: Type.String(),
  errorKind: Type.Optional(DecisionErrorKindSchema),
  errorDetail: Type.Optional(Type.String()),
  capabilityCalls: Type.Array(AuditCapabilityCall),
  logs: Type.Array(Type.Object({ level: LogLevel, message: Type.String() })),
  fuelUsed: Type.Integer({ minimum: 0 }),
  durationUs: Type.Number({ minimum: 0, description: 'Evaluation time in the engine.' }),
  totalUs: Type.Number({ minimum: 0, description: 'Time from request received to decision (queueing included).' }),
});
export type AuditRecord = Static<typeof AuditRecord>;

export const AuditQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ description: 'ISO 8601 or epoch milliseconds, inclusive.' })),
    until: Type.Optional(Type.String({ description: 'ISO 8601 or epoch milliseconds, exclusive.' })),
    vm: Type.Optional(Type.String({ description: 'VM uuid or name.' })),
    decision: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('deny')])),
    policy: Type.Optional(Type.String({ description: 'Policy name.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: AUDIT_QUERY_MAX_LIMIT, description: 'Default 100.' })),
    cursor: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,15}$', description: "From a previous response's nextCursor." }),
    ),
    order: Type.Optional(
      Type.Union([Type.Literal('asc'), Type.Literal('desc')], { description: 'Default desc (newest first).' }),
    ),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditQueryResponse = Type.Object({
  records: Type.Array(AuditRecord),
  nextCursor: Type.Optional(
    Type.String({ description: 'Present when more records match: pass it as `cursor` to continue.' }),
  ),
});
export type AuditQueryResponse = Static<typeof AuditQueryResponse>;

export const AuditRecordResponse = Type.Object({ record: AuditRecord });
export type AuditRecordResponse = Static<typeof AuditRecordResponse>;
