// capgate's typed client library (admin and request sockets), built on runtime/wire.
export { CapgateAdminClient } from './admin-client.ts';
export { CapgateRequestClient, type RequestClientOptions } from './request-client.ts';
export { CapgateApiError, CapgateConnectionError, wrongSocket } from './errors.ts';
export type { TransportOptions } from './transport.ts';
export * from '../wire/index.ts';
