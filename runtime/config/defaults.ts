// A schema's static defaults filled into an input: what resolveConfig starts from, and what the
// simulator takes as "the daemon with no config" (engine-options.ts).
import { isJsonObject } from '../wire/json-object.ts';

/** Fills every key the schema gives a static `default` for, at every level. */
export function withDefaults(
  schema: { properties?: Record<string, unknown>; default?: unknown },
  input: unknown,
): unknown {
  if (schema.properties === undefined) return input === undefined ? structuredClone(schema.default) : input;
  const given = isJsonObject(input) ? input : {};
  const out: Record<string, unknown> = { ...given };
  for (const [k, sub] of Object.entries(schema.properties)) {
    const v = withDefaults(sub as typeof schema, given[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}
