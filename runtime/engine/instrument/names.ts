// Function names survive instrumentation, so a trap can say in which function it happened
// (../trap-site.ts reads them from V8's stack). The guest's names are untrusted and end up in
// stack traces formatted on the daemon's thread, so only a bounded, sanitized copy goes in:
// function names (no local or other names), each at most MAX_NAME_CHARS printable characters,
// at most MAX_NAMES of them. Every other custom section (DWARF, producers, ...) is dropped
// before binaryen reads the module: nothing in them is needed to run it.
import binaryen from 'binaryen';
import { ByteReader, MalformedBinary } from '../component/byte-reader.ts';
import { concat, coreSections, encodeU32 } from './core-sections.ts';
import { sanitizeName } from './sanitize-name.ts';

export { MAX_NAME_CHARS, sanitizeName } from './sanitize-name.ts';
const MAX_NAMES = 100_000;
const CUSTOM = 0;
const FUNCTION_NAMES = 1;

const lenient = new TextDecoder('utf-8', { fatal: false });
const encoder = new TextEncoder();

function customName(bytes: Uint8Array, payload: number, end: number): string | undefined {
  try {
    return new ByteReader(bytes, payload, end).name();
  } catch {
    return undefined;
  }
}

/** The function-names subsection of a name section payload, sanitized; [] when malformed. */
function functionNames(bytes: Uint8Array, payload: number, end: number): Array<[number, string]> {
  try {
    const r = new ByteReader(bytes, payload, end);
    r.name(); // "name"
    while (!r.done) {
      const id = r.byte();
      const sub = r.sub(r.u32());
      if (id !== FUNCTION_NAMES) continue;
      const out: Array<[number, string]> = [];
      const n = sub.count('function name', 2);
      for (let i = 0; i < n && i < MAX_NAMES; i++) {
        const index = sub.u32();
        const len = sub.count('name length');
        out.push([index, sanitizeName(lenient.decode(sub.take(len)))]);
      }
      return out;
    }
  } catch (e) {
    if (!(e instanceof MalformedBinary)) throw e;
  }
  return [];
}

const leb = (n: number): Uint8Array => new Uint8Array(encodeU32(n));

/** A custom "name" section with one function-names subsection (no spreads: it may be large). */
function nameSection(names: Array<[number, string]>): Uint8Array {
  const entries: Uint8Array[] = [leb(names.length)];
  for (const [index, name] of names) {
    const utf8 = encoder.encode(name);
    entries.push(leb(index), leb(utf8.length), utf8);
  }
  const subsection = concat(entries);
  const label = encoder.encode('name');
  const payload = concat([
    leb(label.length),
    label,
    new Uint8Array([FUNCTION_NAMES]),
    leb(subsection.length),
    subsection,
  ]);
  return concat([new Uint8Array([CUSTOM]), leb(payload.length), payload]);
}

/**
 * The module without custom sections, except a bounded function-name section when it had one
 * (placed where the original was: after the code and data sections, as the spec orders it).
 */
export function withFunctionNamesOnly(core: Uint8Array): Uint8Array {
  const sections = coreSections(core);
  const parts: Uint8Array[] = [core.subarray(0, 8)];
  for (const s of sections) {
    if (s.id !== CUSTOM) {
      parts.push(core.subarray(s.start, s.end));
      continue;
    }
    if (customName(core, s.payload, s.end) !== 'name') continue;
    const names = functionNames(core, s.payload, s.end);
    if (names.length > 0) parts.push(nameSection(names));
  }
  return concat(parts);
}

/** emitBinary with the function names binaryen read (its debugInfo switch is global: restored). */
export function emitWithNames(module: binaryen.Module): Uint8Array {
  const before = binaryen.getDebugInfo();
  binaryen.setDebugInfo(true);
  try {
    return module.emitBinary();
  } finally {
    binaryen.setDebugInfo(before);
  }
}
