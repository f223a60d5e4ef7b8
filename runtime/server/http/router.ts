// Matches method + path against the wire's route table. Unknown path -> 404, known path with
// another method -> 405 with Allow, both as JSON errors. RouteTable is the matching alone (used
// by both servers); Router dispatches node:http requests through it (the admin socket), reading
// and checking the JSON body a route declares before its handler runs.
import type http from 'node:http';
import type { BodyOf, RouteSpec, WrongSocketKind } from '../../wire/index.ts';
import { discardBody, readJson } from './body.ts';
import type { ByteRateBudget } from './byte-rate-budget.ts';
import { fail, type Reply } from './reply.ts';
import { checkBody, jsonBodySchema } from './route-body.ts';

export interface RouteMatch<H> {
  handler: H;
  params: Record<string, string>;
}

interface CompiledRoute<H> {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: H;
  /** What matching it returns, for a route without parameters. */
  match: RouteMatch<H> | undefined;
}

/** Which socket a table serves: its 404 says so, so a client that reached the wrong one can tell. */
export type SocketRole = 'admin' | 'request';

const WRONG_SOCKET: Record<SocketRole, { kind: WrongSocketKind; hint: string }> = {
  admin: {
    kind: 'admin-socket',
    hint: "this is capgate's admin socket; `capgate request` needs the request socket: pass --socket <run dir>/request.sock",
  },
  request: {
    kind: 'request-socket',
    hint: "this is capgate's request socket, for `capgate request`; admin commands need the admin socket: pass --socket <run dir>/admin.sock",
  },
};

export class RouteTable<H> {
  private readonly routes: CompiledRoute<H>[] = [];
  /** Every route served, in the order declared: the OpenAPI test compares them with the document. */
  readonly specs: RouteSpec[] = [];

  constructor(private readonly role?: SocketRole) {}

  on(route: RouteSpec, handler: H): this {
    const keys: string[] = [];
    const source = route.path.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
      keys.push(key);
      return '([^/]+)';
    });
    // A route without parameters matches with the same object every time (every request is matched).
    const match = keys.length === 0 ? Object.freeze({ handler, params: Object.freeze({}) }) : undefined;
    this.routes.push({ method: route.method, pattern: new RegExp(`^${source}$`), keys, handler, match });
    this.specs.push(route);
    return this;
  }

  /** The route of `method` on `pathname`, or the 404/405/400 reply that refuses it. */
  match(method: string, pathname: string): RouteMatch<H> | Reply {
    let allowed: string[] | undefined;
    for (const r of this.routes) {
      if (r.match !== undefined && r.method === method && r.pattern.test(pathname)) return r.match;
      const m = r.pattern.exec(pathname);
      if (!m) continue;
      if (r.method !== method) {
        (allowed ??= []).push(r.method);
        continue;
      }
      const params: Record<string, string> = {};
      try {
        for (const [i, k] of r.keys.entries()) params[k] = decodeURIComponent(m[i + 1] ?? '');
      } catch {
        return fail('bad-request', `malformed percent-encoding in ${pathname}`);
      }
      return { handler: r.handler, params };
    }
    if (allowed !== undefined) {
      return fail('method-not-allowed', `${method} is not allowed on ${pathname}`, `use ${allowed.join(' or ')}`, {
        headers: { allow: allowed.join(', ') },
      });
    }
    if (this.role === undefined) return fail('not-found', `no route ${method} ${pathname}`);
    const w = WRONG_SOCKET[this.role];
    return fail('not-found', `no route ${method} ${pathname} on the ${this.role} socket`, w.hint, { kind: w.kind });
  }
}

export function isRouteMatch<H>(m: RouteMatch<H> | Reply): m is RouteMatch<H> {
  return 'handler' in m;
}

export interface RouteContext<P, B = undefined> {
  req: http.IncomingMessage;
  params: Record<string, string>;
  query: URLSearchParams;
  peer: P;
  /** The JSON body the route declares, already checked against its schema. */
  body: B;
}

export type RouteHandler<P, B = undefined> = (ctx: RouteContext<P, B>) => Promise<Reply> | Reply;

export interface RouterOptions {
  role?: SocketRole;
  /** Cap of JSON bodies; larger ones are answered 413 unread. */
  maxJsonBytes: number;
  /** What every body is read (or a refused one dropped) under (byte-rate-budget.ts); none: at full speed. */
  bodyBudget?: ByteRateBudget;
}

export class Router<P> {
  private readonly table: RouteTable<RouteHandler<P, unknown>>;

  constructor(private readonly options: RouterOptions) {
    this.table = new RouteTable<RouteHandler<P, unknown>>(options.role);
  }

  get routes(): readonly RouteSpec[] {
    return this.table.specs;
  }

  /**
   * `refuseParams` runs before the body is read: a path that names nothing (an unknown
   * operation) is answered as such, whatever the body.
   */
  on<R extends RouteSpec>(
    route: R,
    handler: RouteHandler<P, BodyOf<R>>,
    refuseParams?: (params: Record<string, string>) => Reply | null,
  ): this {
    const schema = jsonBodySchema(route);
    if (schema === undefined) {
      this.table.on(route, handler as RouteHandler<P, unknown>);
      return this;
    }
    this.table.on(route, async (ctx) => {
      const refused = refuseParams?.(ctx.params) ?? null;
      if (refused !== null) {
        discardBody(ctx.req, this.options.bodyBudget);
        return refused;
      }
      const json = await readJson(ctx.req, this.options.maxJsonBytes, this.options.bodyBudget);
      if (!json.ok) return json.reply;
      const checked = checkBody<R>(schema, json.value);
      return checked.ok ? handler({ ...ctx, body: checked.body }) : checked.reply;
    });
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
      discardBody(req, this.options.bodyBudget);
      return m;
    }
    return m.handler({ req, params: m.params, query: url.searchParams, peer, body: undefined });
  }
}
