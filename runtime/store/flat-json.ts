// JSON.stringify's text of a plain value (objects, arrays, strings, numbers, booleans, null),
// made as one flat string. JSON.stringify builds its result in pieces (parts of 32, 64, 128...
// characters joined): for an audit record of ~900 characters that is ~1.1 KB of garbage, and the
// result is copied flat again by the first thing that needs its bytes (SQLite's binding of the
// record). Here the text is written into a buffer this module reuses and read out once.
// Same text as JSON.stringify for what it takes (flat-json.test.ts): keys in their own order,
// undefined members left out (null in arrays), non-finite numbers as null, strings escaped by
// JSON.stringify itself unless they are plain printable ASCII. A value it does not take (a bigint,
// a function, a symbol, an object with a prototype of its own, which audit records never hold)
// is left to JSON.stringify whole, so the answer is always JSON.stringify's.
import { decimalDigits, writeDecimal } from '../wire/decimal-bytes.ts';

/** Printable ASCII without the two characters JSON escapes there: written between quotes as it is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Strings up to this length are written a character at a time in JS (a check and a store
 * each); longer ones by the regex and one Buffer write, whose C++ call costs ~0.2 µs whatever
 * the length (every record's ~60 keys and values through it took ~15 µs a record; measured). */
const SHORT = 128;

/** Buffers up to this size are kept for the next call; a larger one is used once. */
const KEEP_BYTES = 64 * 1024;

let scratch: Buffer = Buffer.allocUnsafe(4096);

class NotPlain extends Error {}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;

class Writer {
  buf: Buffer = scratch;
  at = 0;
  /** Writing: a nested call (none expected: plain data runs no code, but a getter would) gets a writer and buffer of its own. */
  busy = false;

  /** Room for `bytes` more, the buffer grown (copied) if needed. */
  room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + bytes));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.at++] = b;
  }

  /** `s`, known to be ASCII. */
  ascii(s: string): void {
    const n = s.length;
    this.room(n);
    const buf = this.buf;
    let at = this.at;
    for (let i = 0; i < n; i++) buf[at++] = s.charCodeAt(i);
    this.at = at;
  }

  utf8(s: string): void {
    this.room(3 * s.length); // at most 3 bytes per UTF-16 unit
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  string(s: string): void {
    const n = s.length;
    if (n > SHORT) {
      if (PLAIN.test(s)) {
        this.room(n + 2);
        this.buf[this.at++] = QUOTE;
        this.at += this.buf.write(s, this.at, 'latin1');
        this.buf[this.at++] = QUOTE;
      } else this.utf8(JSON.stringify(s));
      return;
    }
    this.room(n + 2);
    const buf = this.buf;
    let at = this.at;
    buf[at++] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // Not printable ASCII, or one JSON escapes: JSON.stringify writes it (from where it started).
      if (c < 0x20 || c > 0x7e || c === QUOTE || c === 0x5c) return this.utf8(JSON.stringify(s));
      buf[at++] = c;
    }
    buf[at++] = QUOTE;
    this.at = at;
  }

  /** A finite number as JSON.stringify writes it: a safe integer digit by digit, anything else as String() does. */
  number(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) return this.ascii(String(v));
    if (v === 0) return this.byte(0x30); // -0 too, as JSON.stringify
    const digits = decimalDigits(v);
    this.room(digits);
    this.at = writeDecimal(this.buf, this.at, v, digits);
  }

  value(v: unknown): void {
    switch (typeof v) {
      case 'string':
        return this.string(v);
      case 'number':
        return Number.isFinite(v) ? this.number(v) : this.ascii('null');
      case 'boolean':
        return this.ascii(v ? 'true' : 'false');
      case 'object':
        if (v === null) return this.ascii('null');
        if (Array.isArray(v)) return this.array(v);
        if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) break;
        return this.object(v as Record<string, unknown>);
    }
    throw new NotPlain();
  }

  array(a: readonly unknown[]): void {
    this.byte(0x5b);
    for (let i = 0; i < a.length; i++) {
      if (i > 0) this.byte(COMMA);
      const v = a[i];
      if (v === undefined) this.ascii('null');
      else this.value(v);
    }
    this.byte(0x5d);
  }

  object(o: Record<string, unknown>): void {
    this.byte(0x7b);
    let first = true;
    for (const key in o) {
      if (!Object.hasOwn(o, key)) continue;
      const v = o[key];
      if (v === undefined) continue;
      if (!first) this.byte(COMMA);
      first = false;
      this.string(key);
      this.byte(COLON);
      this.value(v);
    }
    this.byte(0x7d);
  }
}

/** JSON.stringify(value), as one flat string when `value` is plain JSON data. */
export function flatJson(value: unknown): string {
  const json = flatJsonBytes(value);
  return json === null ? JSON.stringify(value) : json.buf.toString('utf8', 0, json.length);
}

/** The writer, and the answer of flatJsonBytes, reused by every call (each decision makes two). */
const shared = new Writer();
const written: { buf: Buffer; length: number } = { buf: scratch, length: 0 };

/**
 * The UTF-8 bytes of JSON.stringify(value), bytes 0 to `length` of `buf`: a buffer this module
 * reuses, in an object it reuses, both valid until its next call (copy the bytes out before).
 * Null when `value` is not plain JSON data (JSON.stringify then writes it). A caller that wants
 * the bytes (an answer on a socket) needs no string then.
 */
export function flatJsonBytes(value: unknown): { readonly buf: Buffer; readonly length: number } | null {
  if (shared.busy) {
    const own = new Writer();
    return writes(own, Buffer.allocUnsafe(scratch.length), value) ? { buf: own.buf, length: own.at } : null;
  }
  shared.busy = true;
  try {
    if (!writes(shared, scratch, value)) return null;
  } finally {
    shared.busy = false;
  }
  if (shared.buf !== scratch && shared.buf.length <= KEEP_BYTES) scratch = shared.buf;
  written.buf = shared.buf;
  written.length = shared.at;
  return written;
}

/** Writes `value` with `w` from the start of `buf`; false when it is not plain JSON data. */
function writes(w: Writer, buf: Buffer, value: unknown): boolean {
  w.buf = buf;
  w.at = 0;
  try {
    w.value(value);
  } catch (err) {
    if (err instanceof NotPlain) return false;
    throw err;
  }
  return true;
}
