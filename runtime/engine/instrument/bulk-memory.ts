// Bulk-memory operations pay fuel in proportion to their size (cost model: fuel.ts). Every
// memory.copy, memory.fill and memory.init of the guest becomes a call to a helper with the
// same operands in the same order (call operands are evaluated left to right, like the
// operation's), which charges `size >> 4` and then performs the operation: its own bounds
// check still traps as before, after the charge. The helpers are added after fuel injection,
// so they are not metered themselves (no loop; constant cost besides the operation).
// memory.init names its data segment as an immediate: one helper per segment used.
import binaryen from 'binaryen';
import { fuelCharge } from './fuel.ts';
import type { Ref } from './binaryen-ir.ts';

import { BULK_BYTES_PER_FUEL_LOG2 } from './metering-constants.ts';

export { BULK_BYTES_PER_FUEL_LOG2 } from './metering-constants.ts';

export interface BulkMemoryMetering {
  /** The helper call that replaces `expr`, or null if `expr` is not a bulk-memory operation. */
  replace(expr: Ref, id: number): Ref | null;
  /** Adds the helpers the replacements call; after fuel injection, so they stay unmetered. */
  addHelpers(): void;
}

type Operation = (dest: Ref, second: Ref, size: Ref) => Ref;

export function bulkMemoryMetering(
  module: binaryen.Module,
  fuelGlobal: string,
  freshName: (base: string) => string,
): BulkMemoryMetering {
  // Helper name -> the operation it wraps, in order of first use.
  const helpers = new Map<string, Operation>();
  let fillHelper: string | undefined;
  let copyHelper: string | undefined;
  const initHelpers = new Map<string, string>(); // data segment -> helper

  const helper = (existing: string | undefined, base: string, op: Operation): string => {
    if (existing !== undefined) return existing;
    const name = freshName(base);
    helpers.set(name, op);
    return name;
  };

  return {
    replace(expr, id) {
      if (id === binaryen.MemoryFillId) {
        const e = binaryen.getExpressionInfo(expr) as binaryen.MemoryFillInfo;
        fillHelper = helper(fillHelper, 'capgate_memory_fill', (d, v, n) => module.memory.fill(d, v, n));
        return module.call(fillHelper, [e.dest, e.value, e.size], binaryen.none);
      }
      if (id === binaryen.MemoryCopyId) {
        const e = binaryen.getExpressionInfo(expr) as binaryen.MemoryCopyInfo;
        copyHelper = helper(copyHelper, 'capgate_memory_copy', (d, s, n) => module.memory.copy(d, s, n));
        return module.call(copyHelper, [e.dest, e.source, e.size], binaryen.none);
      }
      if (id === binaryen.MemoryInitId) {
        const e = binaryen.getExpressionInfo(expr) as binaryen.MemoryInitInfo;
        const segment = e.segment;
        const name = helper(initHelpers.get(segment), 'capgate_memory_init', (d, o, n) =>
          module.memory.init(segment, d, o, n),
        );
        initHelpers.set(segment, name);
        return module.call(name, [e.dest, e.offset, e.size], binaryen.none);
      }
      return null;
    },

    addHelpers() {
      const params = binaryen.createType([binaryen.i32, binaryen.i32, binaryen.i32]);
      const size = (): Ref => module.local.get(2, binaryen.i32);
      for (const [name, op] of helpers) {
        const cost = module.i64.extend_u(module.i32.shr_u(size(), module.i32.const(BULK_BYTES_PER_FUEL_LOG2)));
        const body = module.block(null, [
          fuelCharge(module, fuelGlobal, cost),
          op(module.local.get(0, binaryen.i32), module.local.get(1, binaryen.i32), size()),
        ]);
        module.addFunction(name, params, binaryen.none, [], body);
      }
    },
  };
}
