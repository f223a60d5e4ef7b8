// What the lean server hands its handler: one complete request, body in memory.
import type { Reply } from '../reply.ts';

export interface LeanRequest<P> {
  method: string;
  /** Origin-form path, without the query. */
  path: string;
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Readonly<Record<string, string>>;
  /** Empty when the request had no Content-Length. */
  body: Buffer;
  /** Read from the kernel when the connection was accepted. */
  peer: P;
}

export type LeanHandler<P> = (req: LeanRequest<P>) => Reply | Promise<Reply>;
