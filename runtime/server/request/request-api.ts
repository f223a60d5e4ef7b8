// Routes of the request socket (unprivileged clients).
import { REQUEST_ROUTES, parseSetMemlockBody, type HealthResponse } from '../../wire/index.ts';
import { readJson } from '../http/body.ts';
import { fail, ok } from '../http/reply.ts';
import { Router } from '../http/router.ts';
import type { PeerCredentials } from '../deps.ts';
import type { DecisionPipeline } from './decision-pipeline.ts';

export interface RequestApiOptions {
  pipeline: DecisionPipeline;
  maxJsonBytes: number;
  retryAfterS: number;
  health(): HealthResponse;
}

export function requestRouter(o: RequestApiOptions): Router<PeerCredentials> {
  return new Router<PeerCredentials>()
    .on(REQUEST_ROUTES.health, () => ok(o.health()))
    .on(REQUEST_ROUTES.setMemlock, async ({ req, peer }) => {
      const json = await readJson(req, o.maxJsonBytes);
      if (!json.ok) return json.reply;
      const body = parseSetMemlockBody(json.value);
      if (!body.ok) return fail('bad-request', body.message, body.hint);
      const r = await o.pipeline.decide(peer, 'set-memlock', body.value.targetPid, body.value.bytes);
      if (r.ok) return ok(r.response);
      if (r.reason === 'audit-failed') return fail('internal', r.message, 'the daemon could not write its audit log; see its log');
      if (r.reason === 'closed') return fail('shutting-down', r.message, 'retry against the restarted daemon');
      return fail('overloaded', r.message, `retry after ${o.retryAfterS} s`, { headers: { 'retry-after': String(o.retryAfterS) } });
    });
}
