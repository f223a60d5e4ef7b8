// Test-only: pulls the policy's core module (the one exporting `evaluate`) out of a component.
// Components from wit-component carry it as a top-level core-module section (id 1), next to
// small shim/fixup modules that break the import <-> cabi_realloc cycle.

const CORE_MODULE_SECTION = 1;

function readLeb(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  for (let i = at; i < bytes.length; i++) {
    const b = bytes[i]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
  }
  throw new Error(`truncated LEB128 at byte ${at}`);
}

export function coreModules(component: Uint8Array): Uint8Array[] {
  if (component.length < 8 || component[4] !== 0x0d || component[6] !== 0x01)
    throw new Error('not a WebAssembly component (expected version 0x0d, layer 1)');
  const out: Uint8Array[] = [];
  let at = 8;
  while (at < component.length) {
    const id = component[at]!;
    const { value: size, next } = readLeb(component, at + 1);
    if (id === CORE_MODULE_SECTION) out.push(component.subarray(next, next + size));
    at = next + size;
  }
  return out;
}

/** The core module that exports `evaluate` (the policy itself). */
export function policyCoreModule(component: Uint8Array): WebAssembly.Module {
  for (const bytes of coreModules(component)) {
    const module = new WebAssembly.Module(bytes);
    if (WebAssembly.Module.exports(module).some((e) => e.name === 'evaluate')) return module;
  }
  throw new Error('component has no core module exporting `evaluate`');
}
