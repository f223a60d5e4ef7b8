// Minimal core-module section reading: enough to list exports and imports by kind and to
// rewrite the memory section's limits, without trusting a full decoder with hostile bytes.
import { ByteReader } from '../component/byte-reader.ts';

/** The section ids of a core module (the WebAssembly spec's binary format). */
export const CORE_SECTION = {
  custom: 0,
  type: 1,
  import: 2,
  function: 3,
  table: 4,
  memory: 5,
  global: 6,
  export: 7,
  start: 8,
  element: 9,
  code: 10,
  data: 11,
  dataCount: 12,
} as const;

export const CORE_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00] as const;

export interface CoreSection {
  id: number;
  /** Offset of the section id byte. */
  start: number;
  /** Offset of the first payload byte. */
  payload: number;
  end: number;
}

export function coreSections(bytes: Uint8Array): CoreSection[] {
  const r = new ByteReader(bytes);
  for (const b of CORE_PREAMBLE) if (r.byte() !== b) r.fail('not a core wasm module preamble');
  const out: CoreSection[] = [];
  while (!r.done) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const payload = r.pos;
    r.take(size);
    out.push({ id, start, payload, end: r.pos });
  }
  return out;
}

export const EXTERNAL_KINDS = ['func', 'table', 'memory', 'global', 'tag'] as const;
export type ExternalKind = (typeof EXTERNAL_KINDS)[number];

export interface CoreExport {
  name: string;
  kind: ExternalKind;
}

export function coreExports(bytes: Uint8Array): CoreExport[] {
  const sec = coreSections(bytes).find((s) => s.id === CORE_SECTION.export);
  if (!sec) return [];
  const r = new ByteReader(bytes, sec.payload, sec.end);
  return r.vec('export', () => {
    const name = r.name();
    const k = r.byte();
    r.u32();
    return { name, kind: EXTERNAL_KINDS[k] ?? r.fail(`unknown export kind ${k}`) };
  });
}

export interface CoreImport {
  module: string;
  name: string;
  kind: ExternalKind;
}

/** Imports with their kind; the descriptors themselves are skipped (V8 validated them). */
export function coreImports(bytes: Uint8Array): CoreImport[] {
  const sec = coreSections(bytes).find((s) => s.id === CORE_SECTION.import);
  if (!sec) return [];
  const r = new ByteReader(bytes, sec.payload, sec.end);
  const out: CoreImport[] = [];
  for (let n = r.count('import'); n > 0; n--) {
    const module = r.name();
    const name = r.name();
    const k = r.byte();
    const kind = EXTERNAL_KINDS[k] ?? r.fail(`unknown import kind ${k}`);
    out.push({ module, name, kind });
    // A non-function import is rejected anyway; stop before decoding its descriptor.
    if (kind !== 'func') break;
    r.u32();
  }
  return out;
}

export function encodeU32(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** The parts, one after another, in one new array (a section or a module being rebuilt). */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
