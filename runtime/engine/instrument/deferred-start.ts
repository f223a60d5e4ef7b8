// Moves the module's start function out of instantiation: it runs instead on the first call
// of any exported guest function (in practice: evaluate). Why: a trap during
// `new WebAssembly.Instance` leaves no instance, so the runtime could not read
// __capgate_fuel and tell "infinite loop in start" (fuel-exhausted) from any other trap.
// Deferred, the start function runs inside a call, metered like everything else, and
// instantiation itself runs no guest code. Order is preserved: start still runs before any
// other guest code, exactly once per instance.
import binaryen from 'binaryen';
import { setFunctionBody } from './binaryen-ir.ts';
import { CORE_SECTION, coreSections } from './core-sections.ts';

/** Returns the internal name of the deferred start function, or null if there was none. */
export function deferStart(module: binaryen.Module, startedGlobal: string): string | null {
  const start = module.getStart();
  if (!start) return null;
  const startName = binaryen.getFunctionInfo(start).name;
  module.addGlobal(startedGlobal, binaryen.i32, true, module.i32.const(0));
  for (let i = 0; i < module.getNumExports(); i++) {
    const exp = binaryen.getExportInfo(module.getExportByIndex(i));
    if (exp.kind !== binaryen.ExternalFunction) continue;
    const fn = module.getFunction(exp.value);
    const info = binaryen.getFunctionInfo(fn);
    if (info.module || !info.body) continue; // a re-exported host import runs no guest code
    const runStartOnce = module.if(
      module.i32.eqz(module.global.get(startedGlobal, binaryen.i32)),
      module.block(null, [
        module.global.set(startedGlobal, module.i32.const(1)),
        module.call(startName, [], binaryen.none),
      ]),
    );
    setFunctionBody(fn, module.block(null, [runStartOnce, info.body], binaryen.getExpressionType(info.body)));
  }
  return startName;
}

/** Drops the start section (id 8) from an emitted module. */
export function removeStartSection(bytes: Uint8Array): Uint8Array {
  const sec = coreSections(bytes).find((s) => s.id === CORE_SECTION.start);
  if (!sec) return bytes;
  const out = new Uint8Array(bytes.length - (sec.end - sec.start));
  out.set(bytes.subarray(0, sec.start), 0);
  out.set(bytes.subarray(sec.end), sec.start);
  return out;
}
