// Messages between the compile launcher and its compile process: a 4-byte big-endian length,
// then the value in V8's serialization (typed arrays cross as such). Not Node's IPC channel, whose
// reader buffers whatever length a message declares (up to 4 GiB): a compile process taken over
// by its input could make the launcher hold that much. Here a frame that declares more than the
// reader's bound is refused before a byte of it is kept.
import { deserialize, serialize } from 'node:v8';

const HEADER = 4;

export function frame(value: unknown): Buffer {
  const body = serialize(value);
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** A frame that is too large or does not deserialize: the other side is broken or hostile. */
export class FrameError extends Error {}

/** Cuts a byte stream into frames, each at most `maxBytes` long (its length header not counted). */
export class FrameReader {
  /** The bound of the frames read from now on (a frame whose header is already read keeps its own). */
  maxBytes: number;
  #chunks: Buffer[] = [];
  #have = 0;
  /** The length of the frame being read, once its header is in. */
  #need: number | undefined;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** The values of the frames `chunk` completes. Throws FrameError; after that, push no more. */
  push(chunk: Buffer): unknown[] {
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    const values: unknown[] = [];
    for (;;) {
      if (this.#need === undefined) {
        if (this.#have < HEADER) break;
        const length = this.#joined().readUInt32BE(0);
        if (length > this.maxBytes)
          throw new FrameError(`a message of ${length} bytes was announced; at most ${this.maxBytes} are taken`);
        this.#need = length;
      }
      // Joined only once the whole frame is in: a large one arriving in many chunks is copied once.
      if (this.#have < HEADER + this.#need) break;
      const all = this.#joined();
      const body = all.subarray(HEADER, HEADER + this.#need);
      const rest = all.subarray(HEADER + this.#need);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#have = rest.length;
      this.#need = undefined;
      try {
        values.push(deserialize(body));
      } catch (err) {
        throw new FrameError(`a message did not deserialize: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return values;
  }

  /** Everything buffered, as one buffer (kept as such). */
  #joined(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks, this.#have)];
    return this.#chunks[0]!;
  }
}
