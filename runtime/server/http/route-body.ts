// Request bodies checked against the schema their route declares (wire/routes.ts): the compiled
// validator runs per request; the message names each offending path and, for an unknown key,
// the nearest valid one.
import type { BodyOf, RouteSpec, WireSchemaName } from '../../wire/index.ts';
import { compileValidator, WIRE_SCHEMAS, type Validator } from '../../wire/schemas/index.ts';
import { fail, type Reply } from './reply.ts';

const validators = new Map<WireSchemaName, Validator<(typeof WIRE_SCHEMAS)[WireSchemaName]>>();

/** The compiled validator of a wire schema, compiled once on first use. */
export function validatorOf(name: WireSchemaName): Validator<(typeof WIRE_SCHEMAS)[WireSchemaName]> {
  let v = validators.get(name);
  if (v === undefined) {
    v = compileValidator(WIRE_SCHEMAS[name]);
    validators.set(name, v);
  }
  return v;
}

/** The route's JSON body schema, if it takes one. */
export function jsonBodySchema(route: RouteSpec): WireSchemaName | undefined {
  return route.body === undefined || route.body === 'wasm' || route.body === 'metrics' ? undefined : route.body;
}

export type RouteBodyResult<R extends RouteSpec> = { ok: true; body: BodyOf<R> } | { ok: false; reply: Reply };

/** Checks a parsed JSON value against the body schema `name`; a mismatch is a bad request. */
export function checkBody<R extends RouteSpec>(name: WireSchemaName, value: unknown): RouteBodyResult<R> {
  const r = validatorOf(name).validate(value);
  if (r.ok) return { ok: true, body: r.value as BodyOf<R> };
  return {
    ok: false,
    reply: fail(
      'bad-request',
      `the body is not a valid ${name}: ${r.message}`,
      `GET /v1/openapi.json describes ${name}`,
    ),
  };
}
