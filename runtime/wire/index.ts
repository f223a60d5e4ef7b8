// The admin and request API of capgate: one source of truth for daemon, client and CLI.
export * from './errors.ts';
export * from './routes.ts';
export * from './policies.ts';
export * from './vms.ts';
export * from './operations.ts';
export * from './audit.ts';
export * from './health.ts';

export const WASM_CONTENT_TYPE = 'application/wasm';
export const JSON_CONTENT_TYPE = 'application/json';
