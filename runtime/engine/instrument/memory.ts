// Linear-memory limits: a maximum on the memory (written where memory-import.ts turns the
// memory into an import, so memory.grow past it returns -1 cleanly, without any JS in the
// loop), and an `oom` flag set whenever a memory.grow fails, so the runtime can classify the
// trap that usually follows as memory-limit.
import binaryen from 'binaryen';
import { ByteReader } from '../component/byte-reader.ts';
import { PolicyRejection, invalidModule } from '../component/rejection.ts';
import { BULK_BYTES_PER_FUEL_LOG2 } from './bulk-memory.ts';
import { coreSections } from './core-sections.ts';
import { fuelCharge } from './fuel.ts';

export interface DeclaredMemory {
  initial: number;
  max: number | null;
}

/** The module's single, local, 32-bit, unshared memory, or a rejection. */
export function declaredMemory(module: binaryen.Module, bytes: Uint8Array): DeclaredMemory {
  const sec = coreSections(bytes).find((s) => s.id === 5);
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

/**
 * Fuel of every memory.grow, whatever its delta and outcome: the call into V8's runtime costs
 * ~0.2-0.5 µs even for grow(0) (measured: 30,000 grow(0) took 6-51 ms at the old price of a
 * few units), which is 256 units at the cost model's rate.
 */
export const MEMORY_GROW_FUEL = 256;

/**
 * Adds `growHelper(delta) -> i32`: memory.grow that first pays MEMORY_GROW_FUEL, sets
 * `oomGlobal` to 1 when it fails, and when it succeeds charges the new pages like a bulk fill
 * of them (one unit per 16 bytes, 4096 per page): the first touch of each new page costs a
 * page fault, which fuel must bound too.
 * Every memory.grow of the guest is replaced by a call to it (see instrument.ts). The helper
 * is added after fuel injection, so it is not metered otherwise (no loop, constant cost).
 */
export function addGrowHelper(
  module: binaryen.Module,
  growHelper: string,
  oomGlobal: string,
  fuelGlobal: string,
): void {
  const result = 1; // local index: param 0 is delta
  const pageCost = module.i64.shl(
    module.i64.extend_u(module.local.get(0, binaryen.i32)),
    module.i64.const(BigInt(16 - BULK_BYTES_PER_FUEL_LOG2)),
  );
  module.addFunction(
    growHelper,
    binaryen.createType([binaryen.i32]),
    binaryen.i32,
    [binaryen.i32],
    module.block(
      null,
      [
        fuelCharge(module, fuelGlobal, module.i64.const(BigInt(MEMORY_GROW_FUEL))),
        module.local.set(result, module.memory.grow(module.local.get(0, binaryen.i32))),
        module.if(
          module.i32.eq(module.local.get(result, binaryen.i32), module.i32.const(-1)),
          module.global.set(oomGlobal, module.i32.const(1)),
          fuelCharge(module, fuelGlobal, pageCost),
        ),
        module.local.get(result, binaryen.i32),
      ],
      binaryen.i32,
    ),
  );
}
