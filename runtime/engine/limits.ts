// Resource limits of one policy evaluation. Their defaults, ranges and shape are the wire's
// (runtime/wire/limits.ts): the config and the API show them, the engine enforces them.
export { DEFAULT_LIMITS, type EngineLimits } from '../wire/limits.ts';
