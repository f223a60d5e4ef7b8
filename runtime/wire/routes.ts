// Every route of both sockets, declared once: method, path, path parameters, query, request body
// and response body, by the names of the schemas in schemas/index.ts. The daemon's routers
// validate and dispatch from these, the client calls through them with types derived from them,
// and the OpenAPI document (openapi.ts) is generated from them. Paths with `:param` segments are
// matched by the server's router and filled by `pathOf`.
import type { ErrorCode } from './errors.ts';
import type { WireSchemaName, WireTypes } from './schemas/index.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** A body that is not JSON: a policy component, or the Prometheus text exposition. */
export type RawMedia = 'wasm' | 'metrics';

export interface RouteSpec {
  readonly method: HttpMethod;
  readonly path: string;
  /** One line for the OpenAPI document and `--help`. */
  readonly summary: string;
  /** The schema of each `:param` of the path. */
  readonly params?: Readonly<Record<string, WireSchemaName>>;
  /** An object schema whose properties are the query parameters. */
  readonly query?: WireSchemaName;
  /** The request body: a JSON document of a schema, or raw bytes. */
  readonly body?: WireSchemaName | RawMedia;
  /** The success answers by status; every route may also answer 4xx/5xx with ErrorBody. */
  readonly responses: Readonly<{ 200?: WireSchemaName | RawMedia; 201?: WireSchemaName }>;
  /** Error answers worth documenting on their own (an ErrorBody with one of `codes`), by status. */
  readonly errors?: Readonly<Record<number, ErrorResponseSpec>>;
}

export interface ErrorResponseSpec {
  readonly description: string;
  readonly codes: readonly ErrorCode[];
  /** The answer carries a Retry-After header (seconds). */
  readonly retryAfter?: boolean;
}

const route = <const R extends RouteSpec>(r: R): R => r;

/** Routes that compile a policy: its compile process or launcher may be down for a moment. */
const COMPILER_UNAVAILABLE = {
  503: {
    description:
      'Nothing stored or changed: the compile launcher or the compile process died (or the launcher is restarting after dying young), so the policy could not be compiled now. Not a verdict on the policy: ask again after the Retry-After header.',
    codes: ['compiler-unavailable'],
    retryAfter: true,
  },
} as const satisfies Record<number, ErrorResponseSpec>;

export const ADMIN_ROUTES = {
  health: route({
    method: 'GET',
    path: '/v1/health',
    summary: 'Health, version and uptime, with the loaded policies, VMs, bindings and queue.',
    responses: { 200: 'HealthResponse' },
  }),
  metrics: route({
    method: 'GET',
    path: '/v1/metrics',
    summary: 'Prometheus metrics of the daemon.',
    responses: { 200: 'metrics' },
  }),
  openapi: route({
    method: 'GET',
    path: '/v1/openapi.json',
    summary: 'This document: the OpenAPI 3.1 description of the admin socket.',
    responses: { 200: 'OpenApiDocument' },
  }),
  pushPolicy: route({
    method: 'POST',
    path: '/v1/policies',
    summary:
      'Upload a policy component as a new revision (its signature checked against policies.trustRoots, then compiled and checked before it is stored).',
    query: 'PushPolicyQuery',
    body: 'wasm',
    responses: { 200: 'PushPolicyResponse', 201: 'PushPolicyResponse' },
    errors: COMPILER_UNAVAILABLE,
  }),
  listPolicies: route({
    method: 'GET',
    path: '/v1/policies',
    summary: 'Every policy with its revisions.',
    responses: { 200: 'ListPoliciesResponse' },
  }),
  getPolicy: route({
    method: 'GET',
    path: '/v1/policies/:name',
    summary: 'One policy with its revisions.',
    params: { name: 'PolicyName' },
    responses: { 200: 'PolicySummary' },
  }),
  getRevision: route({
    method: 'GET',
    path: '/v1/policies/:name/revisions/:revision',
    summary: 'One revision: imports, exports, WIT and limits.',
    params: { name: 'PolicyName', revision: 'RevisionNumber' },
    responses: { 200: 'RevisionInfo' },
  }),
  getRevisionWasm: route({
    method: 'GET',
    path: '/v1/policies/:name/revisions/:revision/wasm',
    summary: 'The component bytes of one revision, as uploaded.',
    params: { name: 'PolicyName', revision: 'RevisionNumber' },
    responses: { 200: 'wasm' },
  }),
  deleteRevision: route({
    method: 'DELETE',
    path: '/v1/policies/:name/revisions/:revision',
    summary: 'Delete a revision that is not bound.',
    params: { name: 'PolicyName', revision: 'RevisionNumber' },
    responses: { 200: 'DeleteRevisionResponse' },
  }),
  listBindings: route({
    method: 'GET',
    path: '/v1/bindings',
    summary: 'The revision bound to each operation.',
    responses: { 200: 'ListBindingsResponse' },
  }),
  getBinding: route({
    method: 'GET',
    path: '/v1/bindings/:operation',
    summary: 'The revision bound to one operation.',
    params: { operation: 'Operation' },
    responses: { 200: 'BindingResponse' },
  }),
  bind: route({
    method: 'PUT',
    path: '/v1/bindings/:operation',
    summary: 'Bind a revision to an operation: an atomic switch; requests in flight finish on the old one.',
    params: { operation: 'Operation' },
    body: 'BindRequest',
    responses: { 200: 'BindingResponse' },
    errors: COMPILER_UNAVAILABLE,
  }),
  unbind: route({
    method: 'DELETE',
    path: '/v1/bindings/:operation',
    summary: 'Unbind an operation: its requests are denied with no-policy.',
    params: { operation: 'Operation' },
    responses: { 200: 'BindingResponse' },
  }),
  rollback: route({
    method: 'POST',
    path: '/v1/bindings/:operation/rollback',
    summary: 'Restore the binding that was active before the current one.',
    params: { operation: 'Operation' },
    responses: { 200: 'BindingResponse' },
    errors: COMPILER_UNAVAILABLE,
  }),
  bindingHistory: route({
    method: 'GET',
    path: '/v1/bindings/:operation/history',
    summary: 'Every bind and unbind of an operation.',
    params: { operation: 'Operation' },
    responses: { 200: 'BindingHistoryResponse' },
  }),
  listVms: route({
    method: 'GET',
    path: '/v1/vms',
    summary: 'Every registered VM.',
    responses: { 200: 'ListVmsResponse' },
  }),
  getVm: route({
    method: 'GET',
    path: '/v1/vms/:uuid',
    summary: 'One registered VM.',
    params: { uuid: 'VmUuid' },
    responses: { 200: 'VmResponse' },
  }),
  registerVm: route({
    method: 'POST',
    path: '/v1/vms',
    summary: 'Register a VM with its identity and the anchor its processes are found by.',
    body: 'VmRegistration',
    responses: { 201: 'VmResponse' },
  }),
  updateVm: route({
    method: 'PUT',
    path: '/v1/vms/:uuid',
    summary: "Replace a registered VM's identity and anchor (the uuid stays).",
    params: { uuid: 'VmUuid' },
    body: 'VmRegistration',
    responses: { 200: 'VmResponse' },
  }),
  unregisterVm: route({
    method: 'DELETE',
    path: '/v1/vms/:uuid',
    summary: 'Unregister a VM: its processes become unknown requesters.',
    params: { uuid: 'VmUuid' },
    responses: { 200: 'UnregisterVmResponse' },
  }),
  queryAudit: route({
    method: 'GET',
    path: '/v1/audit',
    summary: 'Audit records matching a filter, newest first by default, a page at a time.',
    query: 'AuditQuery',
    responses: { 200: 'AuditQueryResponse' },
  }),
  getAuditRecord: route({
    method: 'GET',
    path: '/v1/audit/:decisionId',
    summary: 'The audit record of one decision.',
    params: { decisionId: 'DecisionId' },
    responses: { 200: 'AuditRecordResponse' },
  }),
} as const;

export const REQUEST_ROUTES = {
  health: route({
    method: 'GET',
    path: '/v1/health',
    summary: 'Health, version and uptime.',
    responses: { 200: 'HealthResponse' },
  }),
  openapi: route({
    method: 'GET',
    path: '/v1/openapi.json',
    summary: 'This document: the OpenAPI 3.1 description of the request socket.',
    responses: { 200: 'OpenApiDocument' },
  }),
  setMemlock: route({
    method: 'POST',
    path: '/v1/operations/set-memlock',
    summary:
      "Ask for RLIMIT_MEMLOCK of a process to be set; the bound policy decides. Who asks is read from the socket's peer credentials.",
    body: 'SetMemlockBody',
    responses: { 200: 'DecisionResponse' },
    errors: {
      503: {
        description:
          'Not decided, nothing done: the queue is full or the audit log is behind (overloaded), the bound policy is still being compiled after a restart (not-ready), or the daemon is shutting down. Retry after the Retry-After header, when there is one.',
        codes: ['overloaded', 'not-ready', 'shutting-down'],
        retryAfter: true,
      },
      429: {
        description:
          "Not decided, nothing done: the requester's VM has used more than its share of the daemon (scheduler.vmShare) while other VMs were asking, and the request's deadline passed while it waited for more. Retry after the Retry-After header.",
        codes: ['vm-rate-limited'],
        retryAfter: true,
      },
    },
  }),
} as const;

/** The JSON a route answers with on success (the union over its success statuses). */
export type ResponseOf<R extends RouteSpec> = {
  [S in keyof R['responses']]: R['responses'][S] extends WireSchemaName ? WireTypes[R['responses'][S]] : never;
}[keyof R['responses']];

/** The JSON body a route takes, or undefined. */
export type BodyOf<R extends RouteSpec> = R['body'] extends WireSchemaName ? WireTypes[R['body']] : undefined;

/** The query a route takes, or undefined. */
export type QueryOf<R extends RouteSpec> = R['query'] extends WireSchemaName ? WireTypes[R['query']] : undefined;

/** Fills `:param` segments, URI-encoding each value. */
export function pathOf(route: RouteSpec, params: Record<string, string | number> = {}): string {
  return route.path.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
    const value = params[key];
    if (value === undefined) throw new Error(`route ${route.path}: missing parameter "${key}"`);
    return encodeURIComponent(String(value));
  });
}
