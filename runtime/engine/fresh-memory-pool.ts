// Recycled memories for one policy. A memory comes back after its evaluation ended; it is kept
// only if it is still at the plan's initial size (a memory that grew can never shrink back, so it
// is dropped) and then zeroed entirely, which with the data segments that instantiation applies
// again is exactly the fresh state: nothing one decision wrote is visible to the next.
// A memory serves at most MAX_MEMORY_USES instances: V8 keeps every instance that imported a
// memory on a list of that memory until a full garbage collection, and each memory.grow that
// succeeds updates the whole list. Unbounded, a grow after 20,000 decisions took ~110 µs (and a
// grow(0), which the instrumentation no longer lets reach V8, ~300 µs); bounded (256), ~4 µs.
import { newPolicyMemory, PAGE_BYTES, type MemoryPlan } from './policy-memory.ts';

/**
 * Instances one memory serves before it is dropped. Measured on the 2-core VM (Node 20): a 1-page
 * grow takes ~1.6 µs with one instance on the list, ~3.6 µs with 256, ~10 µs with 1024, against
 * the ~21 µs its fuel stands for (instrument/memory.ts). A decision in a new memory takes ~20 µs
 * more than in a recycled one: at 1 in 256 it stays out of the p99 (at 1 in 128 it showed there).
 */
export const MAX_MEMORY_USES = 256;

export class FreshMemoryPool {
  readonly plan: MemoryPlan;
  readonly #capacity: number;
  readonly #free: WebAssembly.Memory[] = [];
  /** Instances each memory has served (handed out by take()). */
  readonly #uses = new WeakMap<WebAssembly.Memory, number>();
  /** Memories handed out over the pool's life, new and recycled (for tests and benchmarks). */
  taken = 0;
  recycled = 0;
  dropped = 0;

  constructor(plan: MemoryPlan, capacity = 2) {
    this.plan = plan;
    this.#capacity = capacity;
  }

  /** A memory in the fresh state: zeroed, initial size, the plan's maximum. */
  take(): WebAssembly.Memory {
    this.taken++;
    const memory = this.#free.pop() ?? newPolicyMemory(this.plan);
    this.#uses.set(memory, (this.#uses.get(memory) ?? 0) + 1);
    return memory;
  }

  /**
   * The bytes give(memory) would drop now (0: it would keep it). Dropped memory is left to the
   * garbage collector, whose work it causes happens after the evaluation, mostly on V8's platform
   * threads (see engine/dropped-memory-cost.ts): the evaluation reports these bytes so that the
   * VM that caused it is charged for it.
   */
  dropsOnGive(memory: WebAssembly.Memory): number {
    const bytes = memory.buffer.byteLength;
    const keeps =
      bytes === this.plan.initialPages * PAGE_BYTES &&
      (this.#uses.get(memory) ?? 0) < MAX_MEMORY_USES &&
      this.#free.length < this.#capacity;
    return keeps ? 0 : bytes;
  }

  /** Returns a memory whose instance will never run again. Call only after the evaluation ended.
   * Returns the bytes dropped (0: the memory was scrubbed and kept). */
  give(memory: WebAssembly.Memory): number {
    if (this.#free.includes(memory))
      throw new Error('FreshMemoryPool.give: this memory was given back twice (engine bug)');
    const dropped = this.dropsOnGive(memory);
    if (dropped > 0) {
      this.dropped++;
      return dropped;
    }
    new Uint8Array(memory.buffer).fill(0);
    this.recycled++;
    this.#free.push(memory);
    return 0;
  }
}
