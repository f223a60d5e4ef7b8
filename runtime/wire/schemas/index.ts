// Every named wire schema, by the name the routes (routes.ts) and the OpenAPI document use.
// Importing this loads TypeBox: the daemon and the tests do; the client and the CLI import only
// the types (wire/index.ts), so their start-up does not pay for it.
import type { Static, TSchema } from '@sinclair/typebox';
import { AuditQuery, AuditQueryResponse, AuditRecord, AuditRecordResponse } from './audit.ts';
import { Operation } from './common.ts';
import { ErrorBody } from './errors.ts';
import { HealthResponse } from './health.ts';
import { DecisionResponse, SetMemlockBody } from './operations.ts';
import {
  BindingHistoryResponse,
  BindingResponse,
  BindRequest,
  DeleteRevisionResponse,
  ListBindingsResponse,
  ListPoliciesResponse,
  PolicyName,
  PolicySummary,
  PushPolicyQuery,
  PushPolicyResponse,
  RevisionInfo,
  RevisionNumber,
} from './policies.ts';
import { ListVmsResponse, UnregisterVmResponse, VmRegistration, VmResponse } from './vms.ts';
import { Type } from '@sinclair/typebox';

/** GET /v1/openapi.json: the document is checked by an OpenAPI validator in the tests, not here. */
export const OpenApiDocument = Type.Object(
  {
    openapi: Type.Literal('3.1.0'),
    info: Type.Object({ title: Type.String(), version: Type.String() }),
    paths: Type.Record(Type.String(), Type.Object({})),
  },
  { description: 'The OpenAPI 3.1 document of the socket that serves it.' },
);
export type OpenApiDocument = Static<typeof OpenApiDocument>;

export const WIRE_SCHEMAS = {
  ErrorBody,
  HealthResponse,
  Operation,
  PolicyName,
  RevisionNumber,
  VmUuid: Type.String({ description: 'The uuid of a registered VM.' }),
  DecisionId: Type.String({
    description: 'The decisionId of a decision, as its answer and its audit record carry it.',
  }),
  PushPolicyQuery,
  PushPolicyResponse,
  ListPoliciesResponse,
  PolicySummary,
  RevisionInfo,
  DeleteRevisionResponse,
  ListBindingsResponse,
  BindRequest,
  BindingResponse,
  BindingHistoryResponse,
  ListVmsResponse,
  VmRegistration,
  VmResponse,
  UnregisterVmResponse,
  AuditQuery,
  AuditQueryResponse,
  AuditRecord,
  AuditRecordResponse,
  SetMemlockBody,
  DecisionResponse,
  OpenApiDocument,
} as const satisfies Record<string, TSchema>;

export type WireSchemaName = keyof typeof WIRE_SCHEMAS;
export type WireTypes = { [K in WireSchemaName]: Static<(typeof WIRE_SCHEMAS)[K]> };

export * from './audit.ts';
export * from './common.ts';
export * from './errors.ts';
export * from './health.ts';
export * from './limits.ts';
export * from './operations.ts';
export * from './policies.ts';
export * from './vms.ts';
export * from './validate.ts';
