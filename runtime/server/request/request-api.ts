// Routes of the request socket (unprivileged clients), as the lean server's handler.
import { REQUEST_ROUTES, type HealthResponse, type RouteSpec } from '../../wire/index.ts';
import { parseSetMemlockBody } from '../../wire/schemas/index.ts';
import { openApiDocument } from '../../wire/openapi.ts';
import { decodeJsonBody } from '../http/body.ts';
import type { LeanHandler, LeanRequest } from '../http/lean/lean-request.ts';
import { fail, ok, type Reply } from '../http/reply.ts';
import { isRouteMatch, RouteTable } from '../http/router.ts';
import type { PeerCredentials } from '../deps.ts';
import type { DecisionPipeline, PipelineResult } from './decision-pipeline.ts';

export interface RequestApiOptions {
  pipeline: DecisionPipeline;
  retryAfterS: number;
  health(): HealthResponse;
  /** Reported in the OpenAPI document's info.version. */
  version: string;
}

type RequestRoute = (req: LeanRequest<PeerCredentials>) => Reply | Promise<Reply>;

/** The lean server's handler, with the routes it serves (the OpenAPI test compares them with the document). */
export type RequestHandler = LeanHandler<PeerCredentials> & { readonly routes: readonly RouteSpec[] };

export function requestHandler(o: RequestApiOptions): RequestHandler {
  let openapi: unknown;
  const routes = new RouteTable<RequestRoute>('request')
    .on(REQUEST_ROUTES.health, () => ok(o.health()))
    .on(REQUEST_ROUTES.openapi, () => ok((openapi ??= openApiDocument('request', o.version))))
    .on(REQUEST_ROUTES.setMemlock, ({ headers, body: raw, peer, waitedMs }) => {
      // The body cap is the server's (maxBodyBytes): over it, the request never gets here.
      const json = decodeJsonBody(headers['content-type'], raw);
      if (!json.ok) return json.reply;
      const body = parseSetMemlockBody(json.value);
      if (!body.ok) return fail('bad-request', body.message, body.hint);
      // Settled already (most decisions): answered without a promise.
      const decided = o.pipeline.decideHere(peer, 'set-memlock', body.value.targetPid, body.value.bytes, waitedMs);
      return decided instanceof Promise ? decided.then(decisionReply) : decisionReply(decided);
    });
  /** The answer to a decision, or to why there was none. */
  const decisionReply = (r: PipelineResult): Reply => {
    if (r.ok) return ok(r.response);
    if (r.reason === 'audit-failed')
      return fail('internal', r.message, 'the daemon could not write its audit log; see its log');
    if (r.reason === 'closed') return fail('shutting-down', r.message, 'retry against the restarted daemon');
    if (r.reason === 'vm-rate-limited') {
      const after = String(r.retryAfterS ?? o.retryAfterS);
      return fail('vm-rate-limited', r.message, `retry after ${after} s`, { headers: { 'retry-after': after } });
    }
    if (r.reason === 'policy-not-ready')
      return fail('not-ready', r.message, `retry after ${o.retryAfterS} s`, {
        headers: { 'retry-after': String(o.retryAfterS) },
      });
    return fail('overloaded', r.message, `retry after ${o.retryAfterS} s`, {
      headers: { 'retry-after': String(o.retryAfterS) },
    });
  };
  const handler: LeanHandler<PeerCredentials> = (req) => {
    const m = routes.match(req.method, req.path);
    return isRouteMatch(m) ? m.handler(req) : m;
  };
  return Object.assign(handler, { routes: routes.specs });
}
