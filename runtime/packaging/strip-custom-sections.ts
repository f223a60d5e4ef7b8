// `capgate build --strip`: the core module without custom sections (function names, DWARF,
// producers), whatever the compiler wrote. Traps then name functions by index only.
import { coreSections } from '../engine/instrument/core-sections.ts';

/** Throws MalformedBinary for bytes that are not a well-formed core module. */
export function stripCustomSections(core: Uint8Array): Uint8Array {
  const kept = coreSections(core).filter((s) => s.id !== 0);
  const out = new Uint8Array(8 + kept.reduce((n, s) => n + (s.end - s.start), 0));
  out.set(core.subarray(0, 8), 0);
  let at = 8;
  for (const s of kept) {
    out.set(core.subarray(s.start, s.end), at);
    at += s.end - s.start;
  }
  return out;
}

/** Whether the module carries a name section (for the build's report). */
export function hasNameSection(core: Uint8Array): boolean {
  try {
    return WebAssembly.Module.customSections(new WebAssembly.Module(core), 'name').length > 0;
  } catch {
    return false;
  }
}
