// Little-endian byte writer/reader over a (shared) buffer, for the worker mailboxes. The writer
// reports overflow instead of growing: a message that does not fit takes the MessagePort path.
const ENCODER = new TextEncoder();
const DECODER = new TextDecoder('utf-8');
/** Below this, ASCII strings are copied by hand: the TextEncoder/TextDecoder call costs more. */
const SHORT_STRING = 32;

/** Thrown when a message does not fit, or cannot be encoded exactly; the caller then falls
 * back to the MessagePort (structured clone), which is always correct. */
export class MailboxOverflow extends Error {}

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

export class ByteWriter {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  pos = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #room(n: number): number {
    const at = this.pos;
    if (at + n > this.#bytes.length) throw new MailboxOverflow();
    this.pos = at + n;
    return at;
  }

  u8(v: number): void {
    this.#bytes[this.#room(1)] = v;
  }

  u32(v: number): void {
    this.#view.setUint32(this.#room(4), v, true);
  }

  f64(v: number): void {
    this.#view.setFloat64(this.#room(8), v, true);
  }

  u64(v: bigint): void {
    this.#view.setBigUint64(this.#room(8), v, true);
  }

  /** u32 byte length, then UTF-8 (lone surrogates become U+FFFD, as with TextEncoder). */
  string(s: string): void {
    const lenAt = this.#room(4);
    const n = s.length;
    if (n <= SHORT_STRING && this.pos + n <= this.#bytes.length) {
      const bytes = this.#bytes;
      const at = this.pos;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        bytes[at + i] = c;
      }
      if (i === n) {
        this.#view.setUint32(lenAt, n, true);
        this.pos = at + n;
        return;
      }
    }
    // UTF-8 cannot carry a lone surrogate; structured clone can, so such a string takes the port.
    if (!isWellFormed(s)) throw new MailboxOverflow();
    const target = this.#bytes.subarray(this.pos);
    const r = ENCODER.encodeInto(s, target);
    if (r.read < n) throw new MailboxOverflow();
    this.#view.setUint32(lenAt, r.written, true);
    this.pos += r.written;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.#bytes.set(b, this.#room(b.length));
  }
}

export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  pos = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #take(n: number): number {
    const at = this.pos;
    if (at + n > this.#bytes.length) throw new RangeError(`mailbox message truncated at byte ${at} (engine bug)`);
    this.pos = at + n;
    return at;
  }

  u8(): number {
    return this.#bytes[this.#take(1)]!;
  }

  u32(): number {
    return this.#view.getUint32(this.#take(4), true);
  }

  f64(): number {
    return this.#view.getFloat64(this.#take(8), true);
  }

  u64(): bigint {
    return this.#view.getBigUint64(this.#take(8), true);
  }

  string(): string {
    const n = this.u32();
    const at = this.#take(n);
    const bytes = this.#bytes;
    if (n <= SHORT_STRING) {
      let s = '';
      let i = 0;
      for (; i < n; i++) {
        const b = bytes[at + i]!;
        if (b >= 0x80) break;
        s += String.fromCharCode(b);
      }
      if (i === n) return s;
    }
    return DECODER.decode(bytes.subarray(at, at + n));
  }

  /** A copy: the mailbox is overwritten by the next message. */
  bytes(): Uint8Array {
    const n = this.u32();
    const at = this.#take(n);
    return this.#bytes.slice(at, at + n);
  }
}
