// The codes an error body may carry. Its own file, importing nothing, so schemas/errors.ts can
// take it without a cycle through errors.ts (which needs the schema's ErrorBody type).

export const ERROR_CODES = [
  'bad-request', // malformed JSON, wrong types, missing fields
  'invalid-policy', // the upload failed validation or compilation
  'unsupported-media-type',
  'payload-too-large',
  'not-found',
  'method-not-allowed',
  'conflict', // e.g. deleting a bound revision, registering a VM twice, a VM anchor inside another VM
  'invalid-anchor', // a VM anchor no VM may have: pid 1, the daemon or its ancestors, a kernel thread
  'forbidden', // peer credentials not on the admin allow-list
  'overloaded', // queue full: retry after the Retry-After header
  'vm-rate-limited', // the requester's VM used more than its share while others asked: retry after the Retry-After header
  'not-ready', // the bound policy is still being compiled (daemon start-up): retry after the Retry-After header
  'compiler-unavailable', // the compile launcher or process died, or is restarting: nothing stored or changed; retry after the Retry-After header
  'shutting-down',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];
