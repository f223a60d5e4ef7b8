// A bounds-checked cursor over wasm binary bytes (LEB128, names, vectors). Every read that
// would run past the end throws MalformedBinary, so a truncated or hostile binary can only
// ever produce a clear invalid-module error, never an out-of-range read.

export class MalformedBinary extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (at byte ${offset})`);
    this.name = 'MalformedBinary';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class ByteReader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string): never {
    throw new MalformedBinary(message, this.pos);
  }

  byte(): number {
    if (this.pos >= this.end) this.fail('unexpected end of data');
    return this.bytes[this.pos++]!;
  }

  peek(): number {
    if (this.pos >= this.end) this.fail('unexpected end of data');
    return this.bytes[this.pos]!;
  }

  /** Unsigned LEB128, at most 32 bits (5 bytes). */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffff_ffff) this.fail('u32 out of range');
        return result;
      }
      shift += 7;
    }
    return this.fail('u32 LEB128 longer than 5 bytes');
  }

  /** A byte count or element count that must still fit in the remaining input. */
  count(what: string, minBytesEach = 1): number {
    const n = this.u32();
    if (n * minBytesEach > this.end - this.pos) this.fail(`${what} count ${n} exceeds the remaining data`);
    return n;
  }

  take(len: number): Uint8Array {
    if (len > this.end - this.pos) this.fail(`length ${len} exceeds the remaining data`);
    const out = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  name(): string {
    const len = this.count('name length');
    const raw = this.take(len);
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail('name is not valid UTF-8');
    }
  }

  vec<T>(what: string, item: (r: ByteReader) => T): T[] {
    const n = this.count(what);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item(this));
    return out;
  }

  /** A sub-reader over the next `len` bytes; this reader skips past them. */
  sub(len: number): ByteReader {
    if (len > this.end - this.pos) this.fail(`section length ${len} exceeds the remaining data`);
    const r = new ByteReader(this.bytes, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }
}
