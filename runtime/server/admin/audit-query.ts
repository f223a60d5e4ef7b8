// Turns the audit query string into a store filter, or says which parameter is wrong.
import { AUDIT_QUERY_DEFAULT_LIMIT, AUDIT_QUERY_MAX_LIMIT } from '../../wire/index.ts';
import type { AuditFilter } from '../../store/audit-store.ts';
import { AuditQuery } from '../../wire/schemas/index.ts';

export type FilterResult = { ok: true; filter: AuditFilter } | { ok: false; message: string; hint: string };

// The parameters are the wire's AuditQuery; query strings are text, so each is converted here.
const KNOWN = new Set(Object.keys(AuditQuery.properties));

export function parseAuditQuery(q: URLSearchParams): FilterResult {
  for (const key of q.keys()) {
    if (!KNOWN.has(key))
      return { ok: false, message: `unknown audit query parameter "${key}"`, hint: `use ${[...KNOWN].join(', ')}` };
  }
  const f: AuditFilter = { limit: AUDIT_QUERY_DEFAULT_LIMIT, order: 'desc' };
  for (const key of ['since', 'until'] as const) {
    const v = q.get(key);
    if (v === null) continue;
    const ms = /^[0-9]+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(ms))
      return {
        ok: false,
        message: `${key}=${v.slice(0, 40)} is not a time`,
        hint: 'use ISO 8601 (2026-01-31T12:00:00Z) or epoch milliseconds',
      };
    if (key === 'since') f.sinceMs = ms;
    else f.untilMs = ms;
  }
  const vm = q.get('vm');
  if (vm !== null) f.vm = vm;
  const policy = q.get('policy');
  if (policy !== null) f.policy = policy;
  const decision = q.get('decision');
  if (decision !== null) {
    if (decision !== 'allow' && decision !== 'deny')
      return {
        ok: false,
        message: `decision=${decision.slice(0, 20)} is neither allow nor deny`,
        hint: 'use decision=allow or decision=deny',
      };
    f.decision = decision;
  }
  const limit = q.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > AUDIT_QUERY_MAX_LIMIT)
      return {
        ok: false,
        message: `limit=${limit.slice(0, 20)} is out of range`,
        hint: `use an integer from 1 to ${AUDIT_QUERY_MAX_LIMIT}`,
      };
    f.limit = n;
  }
  const order = q.get('order');
  if (order !== null) {
    if (order !== 'asc' && order !== 'desc')
      return {
        ok: false,
        message: `order=${order.slice(0, 20)} is neither asc nor desc`,
        hint: 'use order=asc or order=desc',
      };
    f.order = order;
  }
  const cursor = q.get('cursor');
  if (cursor !== null) {
    if (!/^[0-9]{1,15}$/.test(cursor))
      return { ok: false, message: 'the cursor is malformed', hint: "pass a previous response's nextCursor unchanged" };
    f.afterSeq = Number(cursor);
  }
  return { ok: true, filter: f };
}
