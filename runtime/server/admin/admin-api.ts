// Routes of the admin socket: policies, bindings, VMs, audit, health, metrics.
import { OPERATIONS, type Operation } from '../../contract/types.ts';
import type { RegisteredVm } from '../../identity/vm.ts';
import { MAX_SIGNATURE_FILE_BYTES } from '../../signing/minisign.ts';
import type { Store } from '../../store/store.ts';
import {
  ADMIN_ROUTES as R,
  WASM_CONTENT_TYPE,
  type AuditQueryResponse,
  type HealthResponse,
  type ListPoliciesResponse,
  type PolicySummary,
} from '../../wire/index.ts';
import type { IdentityDeps, PeerCredentials } from '../deps.ts';
import { discardBody, readBody } from '../http/body.ts';
import type { ByteRateBudget } from '../http/byte-rate-budget.ts';
import { fail, ok, type Reply } from '../http/reply.ts';
import { Router } from '../http/router.ts';
import type { DaemonMetrics } from '../metrics/daemon-metrics.ts';
import type { PolicyService, ServiceResult } from '../policies/policy-service.ts';
import type { VmRegistry } from '../state/vm-registry.ts';
import { parseAuditQuery } from './audit-query.ts';
import { openApiDocument } from '../../wire/openapi.ts';

export interface AdminApiOptions {
  store: Store;
  policies: PolicyService;
  vms: VmRegistry;
  identity: IdentityDeps;
  metrics: DaemonMetrics;
  maxJsonBytes: number;
  maxPolicyBytes: number;
  /** What every body of the admin socket is read (or a refused one dropped) under (byte-rate-budget.ts): uploads are the large ones. */
  bodyBudget: ByteRateBudget;
  health(): HealthResponse;
  /** Reported in the OpenAPI document's info.version. */
  version: string;
}

export interface AdminPeer {
  creds: PeerCredentials;
  allowed: boolean;
}

export function adminRouter(o: AdminApiOptions): Router<AdminPeer> {
  const { store, policies } = o;
  const reloadVms = (): void => o.vms.replace(store.vms.list());
  // Checked against the stored registry in the same synchronous step as the write that follows.
  const anchorRefusal = (vm: RegisteredVm): Reply | null => {
    const r = o.identity.checkAnchor(vm, store.vms.list());
    if (r === null) return null;
    if (r.kind === 'invalid-anchor') return fail('invalid-anchor', r.message);
    return fail(
      'conflict',
      r.message,
      `unregister or update ${r.vm.name} first if the registry is wrong, or anchor this VM at its own process tree or cgroup`,
      { kind: 'anchor-overlap' },
    );
  };

  let openapi: unknown;
  return new Router<AdminPeer>({ role: 'admin', maxJsonBytes: o.maxJsonBytes, bodyBudget: o.bodyBudget })
    .on(R.health, () => ok(o.health()))
    .on(R.openapi, () => ok((openapi ??= openApiDocument('admin', o.version))))
    .on(R.metrics, async () => ({
      kind: 'raw',
      status: 200,
      contentType: o.metrics.registry.contentType,
      body: await o.metrics.registry.metrics(),
    }))

    .on(R.pushPolicy, async ({ req, query }) => {
      const type = req.headers['content-type'] ?? '';
      if (!type.toLowerCase().startsWith(WASM_CONTENT_TYPE)) {
        discardBody(req, o.bodyBudget);
        return fail(
          'unsupported-media-type',
          `a policy upload must be ${WASM_CONTENT_TYPE}, got ${type || 'no content type'}`,
          `send the component bytes with content-type: ${WASM_CONTENT_TYPE}`,
        );
      }
      const name = query.get('name');
      if (!name) {
        discardBody(req, o.bodyBudget);
        return fail(
          'bad-request',
          'the policy name is missing',
          'name the policy: `capgate policy push <file.wasm> --name <name>`',
        );
      }
      const signature = query.get('signature') ?? undefined;
      if (signature !== undefined && Buffer.byteLength(signature) > MAX_SIGNATURE_FILE_BYTES) {
        discardBody(req, o.bodyBudget);
        return fail(
          'bad-request',
          `the signature is longer than ${MAX_SIGNATURE_FILE_BYTES} bytes`,
          'send the .minisig file `minisign -S` wrote: `capgate policy push <file.wasm> --signature <file.wasm.minisig>`',
        );
      }
      const body = await readBody(req, o.maxPolicyBytes, o.bodyBudget);
      if (!body.ok) return body.reply;
      if (body.body.length === 0)
        return fail('bad-request', 'the upload is empty', 'send the compiled component (.wasm) as the body');
      const r = await policies.push(name, query.get('description') ?? '', body.body, signature);
      return reply(r, (v) => ok(v, v.created ? 201 : 200));
    })
    .on(R.listPolicies, () => {
      const out: ListPoliciesResponse = {
        policies: [...store.policies.list()].map(([name, revisions]) => summary(name, revisions)),
      };
      return ok(out);
    })
    .on(R.getPolicy, ({ params }) => {
      const revisions = store.policies.list().get(params.name!);
      return revisions
        ? ok(summary(params.name!, revisions))
        : fail('not-found', `no policy named ${params.name}`, 'list policies with `capgate policy ls`');
    })
    .on(R.getRevision, ({ params }) => {
      const rev = parseRevision(params.revision!);
      if (typeof rev !== 'number') return rev;
      const info = policies.revisionInfo(params.name!, rev);
      return info ? ok(info) : fail('not-found', `policy ${params.name} has no revision ${rev}`);
    })
    .on(R.getRevisionWasm, ({ params }) => {
      const rev = parseRevision(params.revision!);
      if (typeof rev !== 'number') return rev;
      const bytes = store.policies.bytes(params.name!, rev);
      return bytes
        ? { kind: 'raw', status: 200, contentType: WASM_CONTENT_TYPE, body: Buffer.from(bytes) }
        : fail('not-found', `policy ${params.name} has no revision ${rev}`);
    })
    .on(R.deleteRevision, async ({ params }) => {
      const rev = parseRevision(params.revision!);
      if (typeof rev !== 'number') return rev;
      return reply(await policies.deleteRevision(params.name!, rev), (v) => ok({ deleted: v }));
    })

    .on(R.listBindings, () => ok({ bindings: policies.bindings.all() }))
    .on(R.getBinding, ({ params }) => {
      const op = parseOperation(params.operation!);
      if (typeof op !== 'string') return op;
      return ok({ operation: op, binding: policies.bindings.get(op) });
    })
    .on(
      R.bind,
      async ({ params, body }) =>
        reply(await policies.bind(params.operation! as Operation, body.policy, body.revision), ok),
      (params) => {
        const op = parseOperation(params.operation!);
        return typeof op === 'string' ? null : op;
      },
    )
    .on(R.unbind, async ({ params }) => {
      const op = parseOperation(params.operation!);
      if (typeof op !== 'string') return op;
      return reply(await policies.unbind(op), ok);
    })
    .on(R.rollback, async ({ req, params }) => {
      discardBody(req, o.bodyBudget);
      const op = parseOperation(params.operation!);
      if (typeof op !== 'string') return op;
      return reply(await policies.rollback(op), ok);
    })
    .on(R.bindingHistory, ({ params }) => {
      const op = parseOperation(params.operation!);
      if (typeof op !== 'string') return op;
      return ok({ history: store.bindings.history(op) });
    })

    .on(R.listVms, () => ok({ vms: store.vms.list() }))
    .on(R.getVm, ({ params }) => {
      const vm = store.vms.get(params.uuid!.toLowerCase());
      return vm
        ? ok({ vm })
        : fail('not-found', `no VM with uuid ${params.uuid} is registered`, 'list VMs with `capgate vm ls`');
    })
    .on(R.registerVm, ({ body }) => {
      const v = o.identity.validateVmRegistration(body);
      if (!v.ok)
        return fail(
          'bad-request',
          v.error,
          'send {"identity": {uuid, name, id, labels}, "anchor": {rootPid?, rootStartTime?, cgroup?}}',
        );
      const refused = anchorRefusal(v.vm);
      if (refused !== null) return refused;
      const r = store.vms.register(v.vm);
      if (!r.ok)
        return fail(
          'conflict',
          r.message,
          r.reason === 'exists'
            ? 'update it with `capgate vm register --update --uuid <uuid> ...`'
            : 'choose another name',
        );
      reloadVms();
      return ok({ vm: r.vm }, 201);
    })
    .on(R.updateVm, ({ params, body }) => {
      const v = o.identity.validateVmRegistration(body);
      if (!v.ok) return fail('bad-request', v.error);
      if (v.vm.identity.uuid !== params.uuid!.toLowerCase())
        return fail(
          'bad-request',
          `the body's uuid ${v.vm.identity.uuid} differs from the path's ${params.uuid}`,
          'a VM keeps its uuid; unregister and register to change it',
        );
      const refused = anchorRefusal(v.vm);
      if (refused !== null) return refused;
      const r = store.vms.update(v.vm.identity.uuid, v.vm);
      if (!r.ok)
        return r.reason === 'not-found'
          ? fail('not-found', r.message, 'register it with `capgate vm register --uuid <uuid> ...`')
          : fail('conflict', r.message);
      reloadVms();
      return ok({ vm: r.vm });
    })
    .on(R.unregisterVm, ({ params }) => {
      if (!store.vms.unregister(params.uuid!.toLowerCase()))
        return fail('not-found', `no VM with uuid ${params.uuid} is registered`);
      reloadVms();
      return ok({ unregistered: params.uuid! });
    })

    .on(R.queryAudit, ({ query }) => {
      const f = parseAuditQuery(query);
      if (!f.ok) return fail('bad-request', f.message, f.hint);
      const { records, more } = store.audit.query(f.filter);
      const out: AuditQueryResponse = { records };
      const last = records[records.length - 1];
      if (more && last) out.nextCursor = String(last.seq);
      return ok(out);
    })
    .on(R.getAuditRecord, ({ params }) => {
      const record = store.audit.get(params.decisionId!);
      return record ? ok({ record }) : fail('not-found', `no audit record with decisionId ${params.decisionId}`);
    });
}

function reply<T>(r: ServiceResult<T>, onOk: (v: T) => Reply): Reply {
  if (r.ok) return onOk(r.value);
  return fail(r.code, r.message, r.hint, {
    ...(r.kind !== undefined ? { kind: r.kind } : {}),
    ...(r.retryAfterS !== undefined ? { headers: { 'retry-after': String(r.retryAfterS) } } : {}),
  });
}

function summary(name: string, revisions: PolicySummary['revisions']): PolicySummary {
  return { name, latestRevision: revisions.reduce((m, r) => Math.max(m, r.revision), 0), revisions };
}

function parseRevision(s: string): number | Reply {
  const n = Number(s);
  return /^[0-9]{1,9}$/.test(s) && n >= 1
    ? n
    : fail('bad-request', `revision "${s.slice(0, 20)}" is not a positive integer`);
}

function parseOperation(s: string): Operation | Reply {
  return (OPERATIONS as readonly string[]).includes(s)
    ? (s as Operation)
    : fail('not-found', `unknown operation "${s.slice(0, 40)}"`, `operations: ${OPERATIONS.join(', ')}`);
}
