// The admin and request API of capgate: one source of truth for daemon, client and CLI.
// wire/ depends on nothing else in runtime/ but the contract (the WIT mirror, itself a leaf).
// The shapes are TypeBox schemas in schemas/; this module exports their types and the plain
// constants and helpers, so that importing it does not load the schema library.
export type * from './schemas/index.ts';
export * from './errors.ts';
export * from './error-kinds.ts';
export * from './routes.ts';
export * from './policies.ts';
export * from './operations.ts';
export * from './audit.ts';
export * from './limits.ts';
export * from './health.ts';
export * from './json-object.ts';

export const WASM_CONTENT_TYPE = 'application/wasm';
export const JSON_CONTENT_TYPE = 'application/json';
