// Jobs from the daemon to its compile launcher, on the launcher's stdin: a head (a frame of
// frames.ts: the compile process, the job's id and limits, and the length of the bytes), then
// the policy's bytes, raw. Not in a message of Node's IPC channel, as the other messages are:
// its advanced serialization copies a message's bytes twice on the daemon's main thread (into the
// serializer's buffer, then Buffer.concat with the length), each copy a fresh ArrayBuffer. V8
// counts the ArrayBuffer bytes allocated since the last mark-compact against the old
// generation's allocation limit, and the daemon's heap is small (~12 MB, a limit ~16 MB above it,
// half of it kept for the new space): an admin pushing a 200 KB module in a loop started a full
// mark-compact every 8 MB of such copies, 7.5 a second, each pausing the main thread 5-15 ms
// (--trace-gc, --trace-incremental-marking: "Start (allocation limit)" at 11 MB of heap, 55-65
// MB of external memory). Written here from the upload's own buffer, the bytes cost the daemon
// no copy: the head is a few hundred bytes, and the pipe takes the bytes from where they are.
//
// The launcher reads them with a bound: a head longer than `maxHeadBytes` or announcing more than
// `maxJobBytes` bytes is refused from its header alone, before a byte of it is kept, and a stream
// that ends inside a job is refused (end()). The daemon is the only writer, so either is a bug:
// the launcher exits, saying why, and the daemon starts another.
import { deserialize, serialize } from 'node:v8';
import type { EngineLimits } from '../limits.ts';
import { FrameError } from './frames.ts';

export interface JobHead {
  /** The compile process the job is for (launcher-protocol.ts). */
  proc: number;
  id: number;
  limits: EngineLimits;
  /** The length of the bytes that follow the head. */
  length: number;
}

export interface Job {
  head: JobHead;
  bytes: Buffer;
}

const HEADER = 4;

/** What to write for a job: the head, then `bytes` itself (not a copy). */
export function jobFrame(head: Omit<JobHead, 'length'>, bytes: Uint8Array): [Buffer, Uint8Array] {
  const body = serialize({ ...head, length: bytes.length } satisfies JobHead);
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt32BE(body.length);
  return [Buffer.concat([header, body]), bytes];
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Cuts the daemon's stream into jobs, each head at most `maxHeadBytes`, each job's bytes at most `maxJobBytes`. */
export class JobReader {
  readonly #maxHeadBytes: number;
  readonly #maxJobBytes: number;
  /** The head's header and body, while they arrive (small: bounded by maxHeadBytes). */
  #pending: Buffer = Buffer.alloc(0);
  /** The job whose bytes are arriving, and where they go. */
  #head: JobHead | undefined;
  #into: Buffer | undefined;
  #filled = 0;

  constructor(maxHeadBytes: number, maxJobBytes: number) {
    this.#maxHeadBytes = maxHeadBytes;
    this.#maxJobBytes = maxJobBytes;
  }

  /** The jobs `chunk` completes. Throws FrameError; after that, push no more. */
  push(chunk: Buffer): Job[] {
    const jobs: Job[] = [];
    let at = 0;
    while (at < chunk.length || (this.#head !== undefined && this.#filled === this.#head.length)) {
      if (this.#head === undefined) {
        at = this.#readHead(chunk, at);
        continue;
      }
      const into = this.#into!;
      const n = Math.min(into.length - this.#filled, chunk.length - at);
      chunk.copy(into, this.#filled, at, at + n);
      this.#filled += n;
      at += n;
      if (this.#filled === into.length) {
        jobs.push({ head: this.#head, bytes: into });
        this.#head = undefined;
        this.#into = undefined;
        this.#filled = 0;
      }
    }
    return jobs;
  }

  /** The stream ended: throws FrameError if it ended inside a job. */
  end(): void {
    if (this.#head !== undefined)
      throw new FrameError(
        `the stream ended inside a job's bytes: ${this.#filled} of the ${this.#head.length} its head announced`,
      );
    if (this.#pending.length > 0)
      throw new FrameError(`the stream ended inside a job's head (${this.#pending.length} bytes of it)`);
  }

  /** Takes head bytes from `chunk` at `at`; returns where it stopped. */
  #readHead(chunk: Buffer, at: number): number {
    const need = (): number => (this.#pending.length < HEADER ? HEADER : HEADER + this.#pending.readUInt32BE(0));
    const take = Math.min(need() - this.#pending.length, chunk.length - at);
    this.#pending = Buffer.concat([this.#pending, chunk.subarray(at, at + take)]);
    at += take;
    if (this.#pending.length === HEADER) {
      const length = this.#pending.readUInt32BE(0);
      if (length > this.#maxHeadBytes)
        throw new FrameError(`a job's head of ${length} bytes was announced; at most ${this.#maxHeadBytes} are taken`);
    }
    if (this.#pending.length < HEADER || this.#pending.length < need()) return at;
    const head = this.#decodeHead(this.#pending.subarray(HEADER));
    this.#pending = Buffer.alloc(0);
    this.#head = head;
    this.#into = Buffer.alloc(head.length);
    this.#filled = 0;
    return at;
  }

  #decodeHead(body: Buffer): JobHead {
    let value: unknown;
    try {
      value = deserialize(body);
    } catch (err) {
      throw new FrameError(`a job's head did not deserialize: ${err instanceof Error ? err.message : String(err)}`);
    }
    const h = (typeof value === 'object' && value !== null ? value : {}) as Partial<JobHead>;
    if (!isCount(h.proc) || !isCount(h.id) || !isCount(h.length) || typeof h.limits !== 'object' || h.limits === null)
      throw new FrameError("a job's head is not { proc, id, limits, length }");
    if (h.length > this.#maxJobBytes)
      throw new FrameError(`a job of ${h.length} bytes was announced; at most ${this.#maxJobBytes} are taken`);
    return h as JobHead;
  }
}
