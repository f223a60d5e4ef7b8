// Resource limits of one policy evaluation: defaults and the ranges the daemon accepts. The
// config schema (engine.limits) and the wire schema (a revision's limits) are built from these.
import { ENGINE_LIMIT_SPEC } from './limit-spec.ts';
import type { EngineLimits } from './schemas/limits.ts';

export { ENGINE_LIMIT_SPEC };
export type { EngineLimits };

export const DEFAULT_LIMITS: Readonly<EngineLimits> = Object.freeze(
  Object.fromEntries(
    Object.entries(ENGINE_LIMIT_SPEC).map(([k, spec]) => [k, spec.default]),
  ) as unknown as EngineLimits,
);
