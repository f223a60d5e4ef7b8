// Matches method + path against the wire's route table. Unknown path -> 404, known path with
// another method -> 405 with Allow, both as JSON errors. RouteTable is the matching alone (used
// by both servers); Router dispatches node:http requests through it (the admin socket).
import type http from 'node:http';
import type { RouteSpec, WrongSocketKind } from '../../wire/index.ts';
import { fail, type Reply } from './reply.ts';

export interface RouteMatch<H> {
  handler: H;
  params: Record<string, string>;
}

interface CompiledRoute<H> {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: H;
}

/** Which socket a table serves: its 404 says so, so a client that reached the wrong one can tell. */
export type SocketRole = 'admin' | 'request';

const WRONG_SOCKET: Record<SocketRole, { kind: WrongSocketKind; hint: string }> = {
  admin: { kind: 'admin-socket', hint: "this is capgate's admin socket; `capgate request` needs the request socket: pass --socket <run dir>/request.sock" },
  request: { kind: 'request-socket', hint: "this is capgate's request socket, for `capgate request`; admin commands need the admin socket: pass --socket <run dir>/admin.sock" },
};

export class RouteTable<H> {
  private readonly routes: CompiledRoute<H>[] = [];

  constructor(private readonly role?: SocketRole) {}

  on(route: RouteSpec, handler: H): this {
    const keys: string[] = [];
    const source = route.path.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
      keys.push(key);
      return '([^/]+)';
    });
    this.routes.push({ method: route.method, pattern: new RegExp(`^${source}$`), keys, handler });
    return this;
  }

  /** The route of `method` on `pathname`, or the 404/405/400 reply that refuses it. */
  match(method: string, pathname: string): RouteMatch<H> | Reply {
    const allowed: string[] = [];
    for (const r of this.routes) {
      const m = r.pattern.exec(pathname);
      if (!m) continue;
      if (r.method !== method) {
        allowed.push(r.method);
        continue;
      }
      const params: Record<string, string> = {};
      try {
        r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1] ?? '')));
      } catch {
        return fail('bad-request', `malformed percent-encoding in ${pathname}`);
      }
      return { handler: r.handler, params };
    }
    if (allowed.length > 0) {
      return fail('method-not-allowed', `${method} is not allowed on ${pathname}`, `use ${allowed.join(' or ')}`, { headers: { allow: allowed.join(', ') } });
    }
    if (this.role === undefined) return fail('not-found', `no route ${method} ${pathname}`);
    const w = WRONG_SOCKET[this.role];
    return fail('not-found', `no route ${method} ${pathname} on the ${this.role} socket`, w.hint, { kind: w.kind });
  }
}

export function isRouteMatch<H>(m: RouteMatch<H> | Reply): m is RouteMatch<H> {
  return 'handler' in m;
}

export interface RouteContext<P> {
  req: http.IncomingMessage;
  params: Record<string, string>;
  query: URLSearchParams;
  peer: P;
}

export type RouteHandler<P> = (ctx: RouteContext<P>) => Promise<Reply> | Reply;

export class Router<P> {
  private readonly table: RouteTable<RouteHandler<P>>;

  constructor(role?: SocketRole) {
    this.table = new RouteTable<RouteHandler<P>>(role);
  }

  on(route: RouteSpec, handler: RouteHandler<P>): this {
    this.table.on(route, handler);
    return this;
  }

  async dispatch(req: http.IncomingMessage, peer: P): Promise<Reply> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://capgate');
    } catch {
      return fail('bad-request', `unparseable request target ${String(req.url).slice(0, 100)}`);
    }
    const m = this.table.match(req.method ?? '', url.pathname);
    if (!isRouteMatch(m)) {
      req.resume();
      return m;
    }
    return m.handler({ req, params: m.params, query: url.searchParams, peer });
  }
}
