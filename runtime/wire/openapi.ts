// The OpenAPI 3.1 document of capgate's two sockets, generated from the route declarations
// (routes.ts) and the wire schemas (schemas/), so it cannot drift from what the daemon serves.
// Each socket serves its own routes at GET /v1/openapi.json; docs/openapi.json holds both, each
// path naming the socket(s) that serve it (scripts/generate-docs.ts writes it; a test checks it).
import type { TSchema } from '@sinclair/typebox';
import { ADMIN_ROUTES, REQUEST_ROUTES, type RouteSpec } from './routes.ts';
import { WIRE_SCHEMAS, type WireSchemaName } from './schemas/index.ts';

export type ApiSocket = 'admin' | 'request';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SERVERS: Record<ApiSocket, JsonObject> = {
  admin: {
    url: 'http://admin.sock',
    description:
      "The admin socket: HTTP/1.1 over the Unix socket <runDir>/admin.sock (/run/capgate/admin.sock for a root daemon), mode 0600; peers must be root, the daemon's uid, or in admin.allowUids/allowGids. The host name is ignored.",
    'x-unix-socket': '/run/capgate/admin.sock',
  },
  request: {
    url: 'http://request.sock',
    description:
      'The request socket: HTTP/1.1 over the Unix socket <runDir>/request.sock (/run/capgate/request.sock for a root daemon), for unprivileged requesters. Who asks is read from the peer credentials (SO_PEERCRED), never from the body. The host name is ignored.',
    'x-unix-socket': '/run/capgate/request.sock',
  },
};

const TABLES: Record<ApiSocket, Record<string, RouteSpec>> = { admin: ADMIN_ROUTES, request: REQUEST_ROUTES };

/** The document of one socket, or of both (`docs/openapi.json`). */
export function openApiDocument(socket: ApiSocket | 'both', version: string): JsonObject {
  const sockets: ApiSocket[] = socket === 'both' ? ['admin', 'request'] : [socket];
  const paths: Record<string, JsonObject> = {};
  const servedBy = new Map<string, ApiSocket[]>();
  const used = new Set<WireSchemaName>(['ErrorBody']);
  for (const s of sockets) {
    for (const [id, route] of Object.entries(TABLES[s])) {
      const path = openApiPath(route.path);
      const item = (paths[path] ??= {});
      const method = route.method.toLowerCase();
      if (item[method] === undefined) item[method] = operation(id, route, used);
      const key = `${method} ${path}`;
      servedBy.set(key, [...(servedBy.get(key) ?? []), s]);
    }
  }
  if (socket === 'both') {
    // A path served by one socket only says which; shared ones (health, this document) keep both.
    for (const [path, item] of Object.entries(paths)) {
      const on = new Set(Object.keys(item).flatMap((m) => servedBy.get(`${m} ${path}`) ?? []));
      if (on.size === 1) item.servers = [...on].map((s) => SERVERS[s]);
    }
  }
  const schemas: JsonObject = {};
  for (const name of [...used].sort()) schemas[name] = toJsonSchema(WIRE_SCHEMAS[name]);
  return {
    openapi: '3.1.0',
    info: {
      title: socket === 'both' ? 'capgate API' : `capgate ${socket} socket API`,
      version,
      description:
        'capgate performs privileged operations (raising RLIMIT_MEMLOCK) for unprivileged clients when a sandboxed WebAssembly policy allows it. It speaks JSON over HTTP/1.1 on two Unix sockets: the request socket for requesters, the admin socket for the management layer. Every 4xx/5xx answer carries an ErrorBody.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: sockets.map((s) => SERVERS[s]),
    paths,
    components: { schemas },
  };
}

function openApiPath(path: string): string {
  return path.replace(/:([a-zA-Z]+)/g, '{$1}');
}

const ref = (name: WireSchemaName, used: Set<WireSchemaName>): JsonObject => {
  used.add(name);
  return { $ref: `#/components/schemas/${name}` };
};

function operation(id: string, route: RouteSpec, used: Set<WireSchemaName>): JsonObject {
  const parameters: Json[] = [];
  for (const [name, schema] of Object.entries(route.params ?? {}))
    parameters.push({ name, in: 'path', required: true, schema: ref(schema, used) });
  if (route.query !== undefined) {
    const q = WIRE_SCHEMAS[route.query] as TSchema & { properties?: Record<string, TSchema>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      const s = toJsonSchema(schema);
      parameters.push({
        name,
        in: 'query',
        required: q.required?.includes(name) ?? false,
        schema: s,
        ...(typeof s.description === 'string' ? { description: s.description } : {}),
      });
    }
  }
  const responses: JsonObject = {};
  for (const [status, body] of Object.entries(route.responses)) {
    if (body === undefined) continue;
    responses[status] = { description: status === '201' ? 'Created.' : 'Success.', content: mediaOf(body, used) };
  }
  const error = { content: { 'application/json': { schema: ref('ErrorBody', used) } } };
  for (const [status, spec] of Object.entries(route.errors ?? {})) {
    responses[status] = {
      description: `${spec.description} (error.code: ${spec.codes.join(', ')})`,
      ...(spec.retryAfter === true
        ? {
            headers: {
              'Retry-After': {
                description: 'Seconds to wait before asking again.',
                schema: { type: 'integer', minimum: 0 },
              },
            },
          }
        : {}),
      ...error,
    };
  }
  responses['4XX'] = { description: 'The request was refused: ErrorBody says why and what to do.', ...error };
  responses['5XX'] = {
    description: 'The daemon could not answer (overloaded: see Retry-After; shutting down; internal).',
    ...error,
  };
  return {
    operationId: id,
    summary: route.summary,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body !== undefined ? { requestBody: { required: true, content: mediaOf(route.body, used) } } : {}),
    responses,
  };
}

function mediaOf(body: WireSchemaName | 'wasm' | 'metrics', used: Set<WireSchemaName>): JsonObject {
  if (body === 'wasm')
    return {
      'application/wasm': {
        schema: { type: 'string', contentMediaType: 'application/wasm', description: 'A WebAssembly component.' },
      },
    };
  if (body === 'metrics')
    return { 'text/plain': { schema: { type: 'string', description: 'Prometheus text exposition format.' } } };
  return { 'application/json': { schema: ref(body, used) } };
}

/**
 * A TypeBox schema as plain JSON Schema 2020-12: TypeBox's symbols dropped, its tuples (draft-07
 * `items: [...]`) as `prefixItems`, and capgate's own `errorMessage` annotation left out.
 */
export function toJsonSchema(schema: TSchema): JsonObject {
  return convert(JSON.parse(JSON.stringify(schema)) as Json) as JsonObject;
}

function convert(node: Json): Json {
  if (Array.isArray(node)) return node.map(convert);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'errorMessage') continue;
    if (k === 'items' && Array.isArray(v)) {
      out.prefixItems = v.map(convert);
      continue;
    }
    if (k === 'additionalItems') continue;
    out[k] = convert(v);
  }
  if (Array.isArray(node.items)) out.items = false;
  return out;
}
