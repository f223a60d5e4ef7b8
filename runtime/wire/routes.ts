// Every route of both sockets, in one place, so the daemon and the client cannot drift.
// Paths with `:param` segments are matched by the server's router and filled by `pathOf`.

export const API_VERSION = 'v1';

export const ADMIN_ROUTES = {
  health: { method: 'GET', path: '/v1/health' },
  metrics: { method: 'GET', path: '/v1/metrics' },
  /** Body: application/wasm; query: name (required), description, signature (the .minisig text): PushPolicyQuery. */
  pushPolicy: { method: 'POST', path: '/v1/policies' },
  listPolicies: { method: 'GET', path: '/v1/policies' },
  getPolicy: { method: 'GET', path: '/v1/policies/:name' },
  getRevision: { method: 'GET', path: '/v1/policies/:name/revisions/:revision' },
  getRevisionWasm: { method: 'GET', path: '/v1/policies/:name/revisions/:revision/wasm' },
  deleteRevision: { method: 'DELETE', path: '/v1/policies/:name/revisions/:revision' },
  listBindings: { method: 'GET', path: '/v1/bindings' },
  getBinding: { method: 'GET', path: '/v1/bindings/:operation' },
  bind: { method: 'PUT', path: '/v1/bindings/:operation' },
  unbind: { method: 'DELETE', path: '/v1/bindings/:operation' },
  rollback: { method: 'POST', path: '/v1/bindings/:operation/rollback' },
  bindingHistory: { method: 'GET', path: '/v1/bindings/:operation/history' },
  listVms: { method: 'GET', path: '/v1/vms' },
  getVm: { method: 'GET', path: '/v1/vms/:uuid' },
  registerVm: { method: 'POST', path: '/v1/vms' },
  updateVm: { method: 'PUT', path: '/v1/vms/:uuid' },
  unregisterVm: { method: 'DELETE', path: '/v1/vms/:uuid' },
  queryAudit: { method: 'GET', path: '/v1/audit' },
  getAuditRecord: { method: 'GET', path: '/v1/audit/:decisionId' },
} as const;

export const REQUEST_ROUTES = {
  health: { method: 'GET', path: '/v1/health' },
  setMemlock: { method: 'POST', path: '/v1/operations/set-memlock' },
} as const;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
export interface RouteSpec {
  readonly method: HttpMethod;
  readonly path: string;
}

/** Fills `:param` segments, URI-encoding each value. */
export function pathOf(route: RouteSpec, params: Record<string, string | number> = {}): string {
  return route.path.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
    const value = params[key];
    if (value === undefined) throw new Error(`route ${route.path}: missing parameter "${key}"`);
    return encodeURIComponent(String(value));
  });
}
