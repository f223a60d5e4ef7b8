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
    return this.t.json('GET', R.health.path);
  }

  /** Prometheus text exposition format. */
  async metrics(): Promise<string> {
    const res = await this.t.request('GET', R.metrics.path);
    if (res.status >= 400) decodeJson(res);
    return res.body.toString('utf8');
  }

  /** `signature`: the .minisig file's text (`minisign -S` over exactly these bytes). */
  async pushPolicy(name: string, wasm: Uint8Array, options: { description?: string; signature?: string } = {}): Promise<PushPolicyResponse> {
    const query: PushPolicyQuery = { name, ...options };
    const q = new URLSearchParams({ name: query.name });
    if (query.description !== undefined) q.set('description', query.description);
    if (query.signature !== undefined) q.set('signature', query.signature);
    const res = await this.t.request('POST', `${R.pushPolicy.path}?${q}`, { contentType: WASM_CONTENT_TYPE, data: Buffer.from(wasm.buffer, wasm.byteOffset, wasm.byteLength) });
    return decodeJson(res);
  }

  listPolicies(): Promise<ListPoliciesResponse> {
    return this.t.json('GET', R.listPolicies.path);
  }

  getPolicy(name: string): Promise<PolicySummary> {
    return this.t.json('GET', pathOf(R.getPolicy, { name }));
  }

  getRevision(name: string, revision: number): Promise<RevisionInfo> {
    return this.t.json('GET', pathOf(R.getRevision, { name, revision }));
  }

  async getRevisionWasm(name: string, revision: number): Promise<Uint8Array> {
    const res = await this.t.request('GET', pathOf(R.getRevisionWasm, { name, revision }));
    if (res.status >= 400) decodeJson(res);
    if (res.status !== 200) throw new CapgateApiError(res.status, 'unexpected-response', `unexpected status ${res.status}`);
    return new Uint8Array(res.body);
  }

  deleteRevision(name: string, revision: number): Promise<DeleteRevisionResponse> {
    return this.t.json('DELETE', pathOf(R.deleteRevision, { name, revision }));
  }

  listBindings(): Promise<ListBindingsResponse> {
    return this.t.json('GET', R.listBindings.path);
  }

  getBinding(operation: Operation): Promise<BindingResponse> {
    return this.t.json('GET', pathOf(R.getBinding, { operation }));
  }

  /** Atomic switch: requests in flight finish on the old revision. */
  bind(operation: Operation, body: BindRequest): Promise<BindingResponse> {
    return this.t.json('PUT', pathOf(R.bind, { operation }), body);
  }

  unbind(operation: Operation): Promise<BindingResponse> {
    return this.t.json('DELETE', pathOf(R.unbind, { operation }));
  }

  /** Restores the binding that was active before the current one. */
  rollback(operation: Operation): Promise<BindingResponse> {
    return this.t.json('POST', pathOf(R.rollback, { operation }));
  }

  bindingHistory(operation: Operation): Promise<BindingHistoryResponse> {
    return this.t.json('GET', pathOf(R.bindingHistory, { operation }));
  }

  listVms(): Promise<ListVmsResponse> {
    return this.t.json('GET', R.listVms.path);
  }

  getVm(uuid: string): Promise<VmResponse> {
    return this.t.json('GET', pathOf(R.getVm, { uuid }));
  }

  registerVm(vm: VmRegistration): Promise<VmResponse> {
    return this.t.json('POST', R.registerVm.path, vm);
  }

  updateVm(uuid: string, vm: VmRegistration): Promise<VmResponse> {
    return this.t.json('PUT', pathOf(R.updateVm, { uuid }), vm);
  }

  unregisterVm(uuid: string): Promise<UnregisterVmResponse> {
    return this.t.json('DELETE', pathOf(R.unregisterVm, { uuid }));
  }

  queryAudit(query: AuditQuery = {}): Promise<AuditQueryResponse> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    const s = q.toString();
    return this.t.json('GET', s ? `${R.queryAudit.path}?${s}` : R.queryAudit.path);
  }

  getAuditRecord(decisionId: string): Promise<AuditRecordResponse> {
    return this.t.json('GET', pathOf(R.getAuditRecord, { decisionId }));
  }

  close(): void {
    this.t.close();
  }
}
