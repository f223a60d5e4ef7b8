// Reads a request body with a size cap; decodes JSON with errors that say what is wrong.
import type http from 'node:http';
import type { ByteRateBudget } from './byte-rate-budget.ts';
import { fail, type Reply } from './reply.ts';

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reply: Reply };

/**
 * Reads a body nobody wants (refused before or while it was read) and drops it, under `budget`
 * as readBody reads: what a refused body costs the main thread is its bytes too, and a sender
 * that declared a gigabyte and sent it anyway made the daemon read it at full speed (40
 * mark-compacts a second, measured). The reply then closes the connection (unix-server.ts: the
 * body is not complete), so what is left of it is never read.
 */
export function discardBody(req: http.IncomingMessage, budget?: ByteRateBudget): void {
  req.removeAllListeners('data');
  if (budget !== undefined) {
    const pacing = paced(req, budget);
    req.on('data', (chunk: Buffer) => pacing.pay(chunk.length));
    req.once('close', () => pacing.stop());
  }
  req.resume();
}

/**
 * Pays for what is read of `req` out of `budget` (byte-rate-budget.ts): a chunk that overdraws it
 * pauses `req` until the debt is paid back, and the HTTP parser then stops reading the socket, so
 * the sender waits. stop(): the body is done with, nothing resumes it any more.
 */
function paced(
  req: http.IncomingMessage,
  budget: ByteRateBudget | undefined,
): { pay(bytes: number): void; stop(): void } {
  let resumeTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  return {
    pay(bytes) {
      // The connection's advance on its first read pays first (connection-gate.ts).
      const wait = budget?.spend(bytes, req.socket) ?? 0;
      if (wait <= 0 || resumeTimer !== undefined || stopped) return;
      req.pause();
      resumeTimer = setTimeout(() => {
        resumeTimer = undefined;
        if (!stopped) req.resume();
      }, wait);
    },
    stop() {
      stopped = true;
      clearTimeout(resumeTimer);
    },
  };
}

/**
 * `budget`: what the body's bytes are paid from as they are read (byte-rate-budget.ts); a chunk
 * that overdraws it pauses the request until the debt is paid back, and the HTTP parser then
 * stops reading the socket: the sender waits.
 */
export function readBody(req: http.IncomingMessage, maxBytes: number, budget?: ByteRateBudget): Promise<BodyResult> {
  const tooLarge = (): BodyResult => ({ ok: false, reply: payloadTooLarge(maxBytes) });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    discardBody(req, budget);
    return Promise.resolve(tooLarge());
  }
  // With a declared length (what `capgate policy push` sends), each chunk is copied into place as
  // it arrives: a policy of several MB is then never copied whole in one turn of the event loop
  // (Buffer.concat at 'end' was one such copy, a fresh allocation whose pages all fault at once).
  // Zero-filled, so that a body shorter than declared exposes nothing; the HTTP parser ends the
  // body at the declared length, so it is never longer.
  const into = Number.isSafeInteger(declared) && declared > 0 ? Buffer.alloc(declared) : undefined;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const pacing = paced(req, budget);
    const finish = (r: BodyResult): void => {
      if (done) return;
      done = true;
      pacing.stop();
      resolve(r);
    };
    req.on('data', (chunk: Buffer) => {
      pacing.pay(chunk.length);
      size += chunk.length;
      if (size > maxBytes) {
        finish(tooLarge());
        discardBody(req, budget);
        return;
      }
      if (into !== undefined && size <= into.length) chunk.copy(into, size - chunk.length);
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (into === undefined) return finish({ ok: true, body: Buffer.concat(chunks) });
      if (size !== into.length)
        return finish({
          ok: false,
          reply: fail('bad-request', `the body is ${size} bytes, and its content-length says ${into.length}`),
        });
      finish({ ok: true, body: into });
    });
    req.on('error', (err) =>
      finish({ ok: false, reply: fail('bad-request', `reading the body failed: ${err.message}`) }),
    );
    req.on('close', () =>
      finish({
        ok: false,
        reply: fail('bad-request', 'the client closed the connection before the body was complete'),
      }),
    );
  });
}

/** The answer to a body over the cap, shared by both servers. */
export function payloadTooLarge(maxBytes: number): Reply {
  return fail(
    'payload-too-large',
    `the body is larger than ${maxBytes} bytes`,
    'send a smaller body; the limit is in the daemon configuration',
  );
}

export type JsonResult = { ok: true; value: unknown } | { ok: false; reply: Reply };

/**
 * Accepted content types for a JSON body: none, application/json, and
 * application/x-www-form-urlencoded, which is what `curl -d '{...}'` sends by default.
 */
export function refuseNonJsonType(type: string | undefined): Reply | null {
  if (type === undefined || /^application\/(json|x-www-form-urlencoded)\b/i.test(type)) return null;
  return fail(
    'unsupported-media-type',
    `expected application/json, got ${type}`,
    'send the body as JSON with content-type: application/json',
  );
}

/** Parses a complete body as JSON; an empty or malformed one is a bad request. */
export function parseJsonBody(body: Buffer): JsonResult {
  if (body.length === 0) return { ok: false, reply: fail('bad-request', 'the body is empty', 'send a JSON object') };
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) };
  } catch (err) {
    return {
      ok: false,
      reply: fail('bad-request', `the body is not valid JSON: ${(err as Error).message}`, 'send a JSON object'),
    };
  }
}

/** Content-type check and parse of a body already in memory (the lean request socket). */
export function decodeJsonBody(contentType: string | undefined, body: Buffer): JsonResult {
  const refusal = refuseNonJsonType(contentType);
  return refusal !== null ? { ok: false, reply: refusal } : parseJsonBody(body);
}

/** Reads and parses a JSON body from node:http (the admin socket), under `budget` (readBody). */
export async function readJson(
  req: http.IncomingMessage,
  maxBytes: number,
  budget?: ByteRateBudget,
): Promise<JsonResult> {
  const refusal = refuseNonJsonType(req.headers['content-type']);
  if (refusal !== null) {
    discardBody(req, budget);
    return { ok: false, reply: refusal };
  }
  const body = await readBody(req, maxBytes, budget);
  return body.ok ? parseJsonBody(body.body) : body;
}
