// Typed client of the admin socket. The CLI and the tests use it for every admin command.
import type { Operation } from '../contract/types.ts';
import {
  ADMIN_ROUTES as R,
  pathOf,
  WASM_CONTENT_TYPE,
  type AuditQuery,
  type AuditQueryResponse,
  type AuditRecordResponse,
  type BindingHistoryResponse,
  type BindingResponse,
  type BindRequest,
  type DeleteRevisionResponse,
  type HealthResponse,
  type ListBindingsResponse,
  type ListPoliciesResponse,
  type OpenApiDocument,
  type ListVmsResponse,
  type PolicySummary,
  type PushPolicyQuery,
  type PushPolicyResponse,
  type RevisionInfo,
  type UnregisterVmResponse,
  type VmRegistration,
  type VmResponse,
} from '../wire/index.ts';
import { decodeJson, UnixHttpTransport, type TransportOptions } from './transport.ts';
import { CapgateApiError } from './errors.ts';

export class CapgateAdminClient {
  private readonly t: UnixHttpTransport;

  constructor(options: TransportOptions) {
    this.t = new UnixHttpTransport(options);
  }

  get socketPath(): string {
    return this.t.socketPath;
  }

  health(): Promise<HealthResponse> {
    return this.t.call(R.health);
  }

  /** Prometheus text exposition format. */
  async metrics(): Promise<string> {
    const res = await this.t.request('GET', R.metrics.path);
    if (res.status >= 400) decodeJson(res);
    return res.body.toString('utf8');
  }

  /** `signature`: the .minisig file's text (`minisign -S` over exactly these bytes). */
  async pushPolicy(
    name: string,
    wasm: Uint8Array,
    options: { description?: string; signature?: string } = {},
  ): Promise<PushPolicyResponse> {
    const query: PushPolicyQuery = { name, ...options };
    const q = new URLSearchParams({ name: query.name });
    if (query.description !== undefined) q.set('description', query.description);
    if (query.signature !== undefined) q.set('signature', query.signature);
    const res = await this.t.request('POST', `${R.pushPolicy.path}?${q}`, {
      contentType: WASM_CONTENT_TYPE,
      data: Buffer.from(wasm.buffer, wasm.byteOffset, wasm.byteLength),
    });
    return decodeJson(res);
  }

  listPolicies(): Promise<ListPoliciesResponse> {
    return this.t.call(R.listPolicies);
  }

  getPolicy(name: string): Promise<PolicySummary> {
    return this.t.call(R.getPolicy, { params: { name } });
  }

  getRevision(name: string, revision: number): Promise<RevisionInfo> {
    return this.t.call(R.getRevision, { params: { name, revision } });
  }

  async getRevisionWasm(name: string, revision: number): Promise<Uint8Array> {
    const res = await this.t.request('GET', pathOf(R.getRevisionWasm, { name, revision }));
    if (res.status >= 400) decodeJson(res);
    if (res.status !== 200)
      throw new CapgateApiError(res.status, 'unexpected-response', `unexpected status ${res.status}`);
    return new Uint8Array(res.body);
  }

  deleteRevision(name: string, revision: number): Promise<DeleteRevisionResponse> {
    return this.t.call(R.deleteRevision, { params: { name, revision } });
  }

  listBindings(): Promise<ListBindingsResponse> {
    return this.t.call(R.listBindings);
  }

  getBinding(operation: Operation): Promise<BindingResponse> {
    return this.t.call(R.getBinding, { params: { operation } });
  }

  /** Atomic switch: requests in flight finish on the old revision. */
  bind(operation: Operation, body: BindRequest): Promise<BindingResponse> {
    return this.t.call(R.bind, { params: { operation }, body });
  }

  unbind(operation: Operation): Promise<BindingResponse> {
    return this.t.call(R.unbind, { params: { operation } });
  }

  /** Restores the binding that was active before the current one. */
  rollback(operation: Operation): Promise<BindingResponse> {
    return this.t.call(R.rollback, { params: { operation } });
  }

  bindingHistory(operation: Operation): Promise<BindingHistoryResponse> {
    return this.t.call(R.bindingHistory, { params: { operation } });
  }

  listVms(): Promise<ListVmsResponse> {
    return this.t.call(R.listVms);
  }

  getVm(uuid: string): Promise<VmResponse> {
    return this.t.call(R.getVm, { params: { uuid } });
  }

  registerVm(vm: VmRegistration): Promise<VmResponse> {
    return this.t.call(R.registerVm, { body: vm });
  }

  updateVm(uuid: string, vm: VmRegistration): Promise<VmResponse> {
    return this.t.call(R.updateVm, { params: { uuid }, body: vm });
  }

  unregisterVm(uuid: string): Promise<UnregisterVmResponse> {
    return this.t.call(R.unregisterVm, { params: { uuid } });
  }

  queryAudit(query: AuditQuery = {}): Promise<AuditQueryResponse> {
    return this.t.call(R.queryAudit, { query: { ...query } });
  }

  getAuditRecord(decisionId: string): Promise<AuditRecordResponse> {
    return this.t.call(R.getAuditRecord, { params: { decisionId } });
  }

  /** The OpenAPI 3.1 document of the admin socket. */
  openapi(): Promise<OpenApiDocument> {
    return this.t.call(R.openapi);
  }

  close(): void {
    this.t.close();
  }
}
