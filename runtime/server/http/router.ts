// Matches method + path against the wire's route table. Unknown path -> 404, known path with
// another method -> 405 with Allow, both as JSON errors.
import type http from 'node:http';
import type { RouteSpec } from '../../wire/index.ts';
import { fail, type Reply } from './reply.ts';

export interface RouteContext<P> {
  req: http.IncomingMessage;
  params: Record<string, string>;
  query: URLSearchParams;
  peer: P;
}

export type RouteHandler<P> = (ctx: RouteContext<P>) => Promise<Reply> | Reply;

interface CompiledRoute<P> {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: RouteHandler<P>;
}

export class Router<P> {
  private readonly routes: CompiledRoute<P>[] = [];

  on(route: RouteSpec, handler: RouteHandler<P>): this {
    const keys: string[] = [];
    const source = route.path.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
      keys.push(key);
      return '([^/]+)';
    });
    this.routes.push({ method: route.method, pattern: new RegExp(`^${source}$`), keys, handler });
    return this;
  }

  async dispatch(req: http.IncomingMessage, peer: P): Promise<Reply> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://capgate');
    } catch {
      return fail('bad-request', `unparseable request target ${String(req.url).slice(0, 100)}`);
    }
    const allowed: string[] = [];
    for (const r of this.routes) {
      const m = r.pattern.exec(url.pathname);
      if (!m) continue;
      if (r.method !== req.method) {
        allowed.push(r.method);
        continue;
      }
      const params: Record<string, string> = {};
      try {
        r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1] ?? '')));
      } catch {
        return fail('bad-request', `malformed percent-encoding in ${url.pathname}`);
      }
      return r.handler({ req, params, query: url.searchParams, peer });
    }
    req.resume();
    if (allowed.length > 0) {
      return fail('method-not-allowed', `${req.method} is not allowed on ${url.pathname}`, `use ${allowed.join(' or ')}`, { headers: { allow: allowed.join(', ') } });
    }
    return fail('not-found', `no route ${req.method} ${url.pathname}`, 'routes are versioned under /v1/; see the capgate documentation');
  }
}
