// Linear-memory limits: a maximum on the memory (written where memory-import.ts turns the
// memory into an import, so memory.grow past it returns -1 cleanly, without any JS in the
// loop), and an `oom` flag set whenever a memory.grow fails, so the runtime can classify the
// trap that usually follows as memory-limit.
import binaryen from 'binaryen';
import { ByteReader } from '../component/byte-reader.ts';
import { PolicyRejection, invalidModule } from '../component/rejection.ts';
import { BULK_BYTES_PER_FUEL_LOG2, MEMORY_GROW_FUEL } from './metering-constants.ts';
import { CORE_SECTION, coreSections } from './core-sections.ts';
import { fuelCharge } from './fuel.ts';

export interface DeclaredMemory {
  initial: number;
  max: number | null;
}

/** The module's single, local, 32-bit, unshared memory, or a rejection. */
export function declaredMemory(module: binaryen.Module, bytes: Uint8Array): DeclaredMemory {
  const sec = coreSections(bytes).find((s) => s.id === CORE_SECTION.memory);
  const count = sec ? new ByteReader(bytes, sec.payload, sec.end).u32() : 0;
  if (count !== 1) throw invalidModule(`the core module has ${count} memories; a policy has exactly one`);
  const info = module.getMemoryInfo();
  if (info.shared) throw invalidModule('the core module declares a shared memory; threads are not supported');
  if (info.is64) throw invalidModule('the core module declares a 64-bit memory; only 32-bit memory is supported');
  return { initial: info.initial, max: info.max ?? null };
}

export function checkInitialMemory(mem: DeclaredMemory, limitPages: number): void {
  if (mem.initial > limitPages) {
    throw new PolicyRejection(
      'memory-limit',
      `the module's initial memory is ${mem.initial} pages (${mem.initial * 64} KiB); the limit is ${limitPages} pages (${limitPages * 64} KiB)`,
    );
  }
}

export { MEMORY_GROW_FUEL } from './metering-constants.ts';

/**
 * Adds `growHelper(delta) -> i32`, which every memory.grow of the guest becomes (instrument.ts):
 * it first pays MEMORY_GROW_FUEL, then
 * - delta 0: returns memory.size, without calling memory.grow. V8's grow(0) still detaches the
 *   buffer and updates every instance that ever used the memory (a recycled memory's list grows
 *   with the evaluations since the last full GC): measured 0.3 µs to 300 µs a call;
 * - a delta over what `maxPages` leaves (u32: a negative delta is a huge one): returns -1 and
 *   sets `oomGlobal` to 1, without calling memory.grow;
 * - otherwise it charges the new pages like a bulk fill of them (one unit per 16 bytes, 4096 per
 *   page: the first touch of each new page costs a page fault, which fuel must bound too) before
 *   it grows, so a run grows only what its fuel pays for (a speculative slice of 100k units: 24
 *   pages); then memory.grow(delta), and if V8 still refuses (out of memory) -1, the flag, and
 *   the pages' fuel given back.
 * So the only grows that reach V8 succeed, and there are at most `maxPages` - initial of them in
 * a run. The helper is added after fuel injection, so it is not metered otherwise (no loop,
 * constant cost). `maxPages` must be the memory's maximum (the import's, memory-import.ts).
 */
export function addGrowHelper(
  module: binaryen.Module,
  names: { growHelper: string; oomGlobal: string; fuelGlobal: string },
  maxPages: number,
): void {
  const { growHelper, oomGlobal, fuelGlobal } = names;
  const delta = (): number => module.local.get(0, binaryen.i32);
  const result = 1; // local index: param 0 is delta
  const pageCost = (): number =>
    module.i64.shl(module.i64.extend_u(delta()), module.i64.const(BigInt(16 - BULK_BYTES_PER_FUEL_LOG2)));
  const refused = module.block(null, [
    module.global.set(oomGlobal, module.i32.const(1)),
    module.return(module.i32.const(-1)),
  ]);
  module.addFunction(
    growHelper,
    binaryen.createType([binaryen.i32]),
    binaryen.i32,
    [binaryen.i32],
    module.block(
      null,
      [
        fuelCharge(module, fuelGlobal, module.i64.const(BigInt(MEMORY_GROW_FUEL))),
        module.if(module.i32.eqz(delta()), module.return(module.memory.size())),
        // memory.size <= maxPages always holds, so the subtraction cannot wrap.
        module.if(module.i32.gt_u(delta(), module.i32.sub(module.i32.const(maxPages), module.memory.size())), refused),
        fuelCharge(module, fuelGlobal, pageCost()),
        module.local.set(result, module.memory.grow(delta())),
        module.if(
          module.i32.eq(module.local.get(result, binaryen.i32), module.i32.const(-1)),
          module.block(null, [
            module.global.set(oomGlobal, module.i32.const(1)),
            module.global.set(fuelGlobal, module.i64.add(module.global.get(fuelGlobal, binaryen.i64), pageCost())),
          ]),
        ),
        module.local.get(result, binaryen.i32),
      ],
      binaryen.i32,
    ),
  );
}
