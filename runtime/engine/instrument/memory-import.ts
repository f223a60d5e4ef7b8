// Turns the module's own memory into an import, so the run time can hand each fresh instance a
// recycled, zeroed memory instead of reserving a new one (a wasm memory costs a multi-GiB
// address-space reservation plus guard regions: most of an instantiation's time). Active data
// segments still apply at instantiation, so a zeroed memory of the initial size + instantiation
// is exactly the fresh state. The limits travel in a custom section, because
// WebAssembly.Module.imports() does not report a memory import's limits.
import { ByteReader } from '../component/byte-reader.ts';
import { invalidModule } from '../component/rejection.ts';
import { MEMORY_IMPORT_MODULE, MEMORY_IMPORT_NAME, MEMORY_PLAN_SECTION } from '../instrumentation-globals.ts';
import { CORE_SECTION, concat, coreSections, encodeU32, type CoreSection } from './core-sections.ts';

const KIND_MEMORY = 0x02;
const LIMITS_MIN_MAX = 0x01;

function encodeName(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...encodeU32(bytes.length), ...bytes];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...encodeU32(payload.length), ...payload];
}

/** The memory plan section's payload: initial and maximum pages, u32 little-endian each. */
function planPayload(initial: number, max: number): number[] {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, initial, true);
  v.setUint32(4, max, true);
  return [...encodeName(MEMORY_PLAN_SECTION), ...b];
}

/**
 * Rewrites an emitted module whose single memory is defined locally (memory index 0) so that it
 * imports `MEMORY_IMPORT_MODULE`.`MEMORY_IMPORT_NAME` with limits (initial, `max`) instead. The
 * memory export, data segments and every memory instruction keep referring to index 0: imported
 * memories come first in the index space and there is no other memory.
 */
export function memoryAsImport(bytes: Uint8Array, max: number): Uint8Array {
  const sections = coreSections(bytes);
  const mem = sections.find((s) => s.id === CORE_SECTION.memory);
  if (!mem) throw invalidModule('the core module has no memory section');
  const r = new ByteReader(bytes, mem.payload, mem.end);
  if (r.u32() !== 1) throw invalidModule('expected exactly one memory');
  const flags = r.byte();
  if (flags !== 0x00 && flags !== 0x01) throw invalidModule(`unsupported memory limits flags 0x${flags.toString(16)}`);
  const initial = r.u32();
  if (initial > max) throw invalidModule(`initial memory of ${initial} pages exceeds the maximum of ${max} pages`);
  const entry = [
    ...encodeName(MEMORY_IMPORT_MODULE),
    ...encodeName(MEMORY_IMPORT_NAME),
    KIND_MEMORY,
    LIMITS_MIN_MAX,
    ...encodeU32(initial),
    ...encodeU32(max),
  ];

  const imports = sections.find((s) => s.id === CORE_SECTION.import);
  let importSection: Uint8Array;
  if (imports) {
    const ir = new ByteReader(bytes, imports.payload, imports.end);
    const count = ir.u32();
    importSection = concat([
      Uint8Array.from(encodeU32(count + 1)),
      bytes.subarray(ir.pos, imports.end),
      Uint8Array.from(entry),
    ]);
  } else {
    importSection = concat([Uint8Array.from(encodeU32(1)), Uint8Array.from(entry)]);
  }
  importSection = concat([Uint8Array.of(CORE_SECTION.import, ...encodeU32(importSection.length)), importSection]);
  // Without an import section, the new one goes before the first known section that must follow it.
  const insertBefore: CoreSection | undefined = imports ?? sections.find((s) => s.id > CORE_SECTION.import);
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  for (const s of sections) {
    if (s === insertBefore) parts.push(importSection);
    if (s === imports || s === mem || isPlanSection(bytes, s)) continue; // a guest's own "plan" never survives
    parts.push(bytes.subarray(s.start, s.end));
  }
  if (insertBefore === undefined) parts.push(importSection);
  parts.push(Uint8Array.from(section(0, planPayload(initial, max))));
  return concat(parts);
}

function isPlanSection(bytes: Uint8Array, s: CoreSection): boolean {
  if (s.id !== 0) return false;
  try {
    return new ByteReader(bytes, s.payload, s.end).name() === MEMORY_PLAN_SECTION;
  } catch {
    return false;
  }
}
