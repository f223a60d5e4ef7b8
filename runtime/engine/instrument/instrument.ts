// Upload-time rewrite of the core module that will run: check its ABI, meter fuel, cap and
// flag memory. The result keeps every guest export unchanged and adds two globals that form
// the runtime protocol with the executor:
//   __capgate_fuel (mut i64): remaining budget, starts at limits.fuel; negative after a fuel
//                             trap; fuel used = limits.fuel - remaining.
//   __capgate_oom  (mut i32): 1 once any memory.grow returned -1.
// Its memory becomes an import (capgate:engine.memory, limits in a custom section; see
// memory-import.ts), still exported as "memory".
// The guest's start function, if any, no longer runs at instantiation but on the first call
// of an exported function (deferred-start.ts), so a trap in it is observable with its fuel.
import binaryen from 'binaryen';
import { invalidModule } from '../component/rejection.ts';
import { ALLOWED_FEATURES, memoryGrowDelta } from './binaryen-ir.ts';
import { bulkMemoryMetering } from './bulk-memory.ts';
import { checkCoreAbi } from './core-abi.ts';
import { deferStart, removeStartSection } from './deferred-start.ts';
import { injectFuel } from './fuel.ts';
import { addGrowHelper, checkInitialMemory, declaredMemory } from './memory.ts';
import { memoryAsImport } from './memory-import.ts';
import { emitWithNames, withFunctionNamesOnly } from './names.ts';

export const FUEL_EXPORT = '__capgate_fuel';
export const OOM_EXPORT = '__capgate_oom';

export interface InstrumentOptions {
  fuel: number;
  memoryPages: number;
}

export interface InstrumentedModule {
  bytes: Uint8Array;
  hostFunctions: string[];
  hasPostReturn: boolean;
  /** The memory maximum written into the module, in pages. */
  memoryMaxPages: number;
}

export function instrumentCoreModule(core: Uint8Array, opts: InstrumentOptions): InstrumentedModule {
  if (!Number.isSafeInteger(opts.fuel) || opts.fuel <= 0)
    throw new RangeError(`limits.fuel must be a positive safe integer, got ${opts.fuel}`);
  if (!Number.isInteger(opts.memoryPages) || opts.memoryPages < 1 || opts.memoryPages > 65536) {
    throw new RangeError(`limits.memoryPages must be an integer in 1..65536, got ${opts.memoryPages}`);
  }
  // V8's validator sees the untrusted bytes first; binaryen only ever reads a valid module.
  if (!WebAssembly.validate(core)) throw invalidModule('the core module inside the component is not valid WebAssembly');
  let module: binaryen.Module;
  try {
    // Custom sections are dropped, except the function names traps are reported with (names.ts).
    module = binaryen.readBinaryWithFeatures(withFunctionNamesOnly(core), ALLOWED_FEATURES);
  } catch {
    throw invalidModule(
      'the core module uses WebAssembly features capgate does not support (allowed: MVP, bulk memory, sign-ext, non-trapping float-to-int, multivalue, SIMD)',
    );
  }
  try {
    const abi = checkCoreAbi(module, core);
    const mem = declaredMemory(module, core);
    checkInitialMemory(mem, opts.memoryPages);
    const memoryMaxPages = Math.min(mem.max ?? Infinity, opts.memoryPages);

    const freshName = nameAllocator(module);
    const fuelGlobal = freshName('capgate_fuel');
    const oomGlobal = freshName('capgate_oom');
    const growHelper = freshName('capgate_memory_grow');
    module.addGlobal(fuelGlobal, binaryen.i64, true, module.i64.const(BigInt(opts.fuel)));
    module.addGlobal(oomGlobal, binaryen.i32, true, module.i32.const(0));
    const bulkMemory = bulkMemoryMetering(module, fuelGlobal, freshName);
    injectFuel(module, fuelGlobal, {
      replace: (expr, id) =>
        id === binaryen.MemoryGrowId
          ? module.call(growHelper, [memoryGrowDelta.get(expr)], binaryen.i32)
          : (bulkMemory.replace(expr, id) ?? expr),
    });
    addGrowHelper(module, { growHelper, oomGlobal, fuelGlobal }, memoryMaxPages);
    bulkMemory.addHelpers();
    const deferredStart = deferStart(module, freshName('capgate_started'));
    module.addGlobalExport(fuelGlobal, FUEL_EXPORT);
    module.addGlobalExport(oomGlobal, OOM_EXPORT);
    module.setFeatures(ALLOWED_FEATURES);
    let bytes = memoryAsImport(emitWithNames(module), memoryMaxPages);
    if (deferredStart) bytes = removeStartSection(bytes);
    return { bytes, hostFunctions: abi.hostFunctions, hasPostReturn: abi.hasPostReturn, memoryMaxPages };
  } finally {
    module.dispose();
  }
}

/**
 * Gives internal names not used by any global or function of the module, nor given before
 * (a helper's name is chosen before the helper is added, see bulk-memory.ts).
 */
function nameAllocator(module: binaryen.Module): (base: string) => string {
  const given = new Set<string>();
  return (base) => {
    for (let i = 0; ; i++) {
      const name = i === 0 ? base : `${base}_${i}`;
      if (!given.has(name) && !module.getGlobal(name) && !module.getFunction(name)) {
        given.add(name);
        return name;
      }
    }
  };
}
