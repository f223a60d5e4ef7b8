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
  /** How long the complete request waited for its turn on the main thread (turn-queue.ts), in ms; 0: it ran at once. */
  waitedMs: number;
}

export type LeanHandler<P> = (req: LeanRequest<P>) => Reply | Promise<Reply>;
