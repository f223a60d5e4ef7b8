// Recycled memories for one policy. A memory comes back after its evaluation ended; it is kept
// only if it is still at the plan's initial size (a memory that grew can never shrink back, so it
// is dropped) and then zeroed entirely, which with the data segments that instantiation applies
// again is exactly the fresh state: nothing one decision wrote is visible to the next.
import { newPolicyMemory, PAGE_BYTES, type MemoryPlan } from './policy-memory.ts';

export class FreshMemoryPool {
  readonly plan: MemoryPlan;
  readonly #capacity: number;
  readonly #free: WebAssembly.Memory[] = [];
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
    return this.#free.pop() ?? newPolicyMemory(this.plan);
  }

  /** Returns a memory whose instance will never run again. Call only after the evaluation ended. */
  give(memory: WebAssembly.Memory): void {
    if (this.#free.includes(memory))
      throw new Error('FreshMemoryPool.give: this memory was given back twice (engine bug)');
    if (memory.buffer.byteLength !== this.plan.initialPages * PAGE_BYTES || this.#free.length >= this.#capacity) {
      this.dropped++;
      return;
    }
    new Uint8Array(memory.buffer).fill(0);
    this.recycled++;
    this.#free.push(memory);
  }
}
