// Bounds-checked access to a guest's linear memory. Every pointer and length that comes from the
// guest goes through here; anything outside the memory's *current* size (it may have grown since
// the last call) or misaligned is an invalid-abi fault, never a host crash or a silent wrap.
import { abiFault } from './guest-fault.ts';

const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** Below this, an ASCII-only string is built by hand: TextDecoder's call overhead dominates. */
const SHORT_STRING = 64;

export class GuestMemory {
  readonly #memory: WebAssembly.Memory;
  // Views are cached per ArrayBuffer: memory.grow detaches the old buffer and makes a new one.
  #buffer: ArrayBuffer;
  #bytes: Buffer;
  #view: DataView;

  constructor(memory: WebAssembly.Memory) {
    this.#memory = memory;
    this.#buffer = memory.buffer;
    this.#bytes = Buffer.from(this.#buffer);
    this.#view = new DataView(this.#buffer);
  }

  #refresh(): void {
    const buffer = this.#memory.buffer;
    if (buffer !== this.#buffer) {
      this.#buffer = buffer;
      this.#bytes = Buffer.from(buffer);
      this.#view = new DataView(buffer);
    }
  }

  get byteLength(): number {
    this.#refresh();
    return this.#buffer.byteLength;
  }

  /** Throws invalid-abi unless [ptr, ptr+size) lies in memory and ptr is aligned. */
  check(what: string, ptr: number, size: number, align: number): void {
    // Guest i32 values arrive signed; the ABI treats them as u32.
    const p = ptr >>> 0;
    if (p % align !== 0) throw abiFault(`${what}: pointer ${p} is not ${align}-byte aligned`);
    const length = this.byteLength;
    if (p + size > length) throw abiFault(`${what}: [${p}, ${p + size}) is outside guest memory of ${length} bytes`);
  }

  u8(what: string, ptr: number): number {
    this.check(what, ptr, 1, 1);
    return this.#bytes[ptr >>> 0]!;
  }

  u32(what: string, ptr: number): number {
    this.check(what, ptr, 4, 4);
    return this.#view.getUint32(ptr >>> 0, true);
  }

  /** A UTF-8 string at (ptr, len): bounds-checked, length-capped before anything is copied, strict. */
  string(what: string, ptr: number, len: number, maxBytes: number): string {
    const n = len >>> 0;
    if (n > maxBytes) throw abiFault(`${what}: string of ${n} bytes exceeds the limit of ${maxBytes} bytes`);
    this.check(what, ptr, n, 1);
    const p = ptr >>> 0;
    const bytes = this.#bytes;
    if (n <= SHORT_STRING) {
      let i = 0;
      while (i < n && bytes[p + i]! < 0x80) i++;
      // ASCII: one string made straight from the bytes (built a character at a time, every
      // character made a string of its own).
      if (i === n) return bytes.toString('latin1', p, p + n);
    }
    try {
      return UTF8.decode(bytes.subarray(p, p + n));
    } catch {
      throw abiFault(`${what}: string at ${p} (${n} bytes) is not valid UTF-8`);
    }
  }

  writeU8(what: string, ptr: number, value: number): void {
    this.check(what, ptr, 1, 1);
    this.#bytes[ptr >>> 0] = value;
  }

  writeU32(what: string, ptr: number, value: number): void {
    this.check(what, ptr, 4, 4);
    this.#view.setUint32(ptr >>> 0, value >>> 0, true);
  }

  writeI32(what: string, ptr: number, value: number): void {
    this.check(what, ptr, 4, 4);
    this.#view.setInt32(ptr >>> 0, value | 0, true);
  }

  writeBytes(what: string, ptr: number, bytes: Uint8Array): void {
    this.check(what, ptr, bytes.length, 1);
    this.#bytes.set(bytes, ptr >>> 0);
  }

  /** Writes `value` as UTF-8 at `ptr`; `length` is its utf8Length. Straight into the memory: no
   * copy of the bytes on the host's heap. */
  writeUtf8(what: string, ptr: number, value: string, length: number): void {
    this.check(what, ptr, length, 1);
    this.#bytes.write(value, ptr >>> 0, length, 'utf8');
  }
}

/** Bytes of `s` in UTF-8 (a lone surrogate counts as U+FFFD, as it is written). */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
