// Fresh instances of one policy, made cheaply: the host imports are built once and shared (their
// StateHolder is filled only for the duration of one evaluation, and only one instance runs at a
// time), and memories come from a FreshMemoryPool when the module imports its memory.
import { createHostImports, type StateHolder } from './abi/host-imports.ts';
import type { PreparedInstance } from './evaluate-instance.ts';
import { FreshMemoryPool } from './fresh-memory-pool.ts';
import { memoryPlanOf, withMemory } from './policy-memory.ts';

export class InstanceFactory {
  readonly module: WebAssembly.Module;
  /** Present when the module imports its memory (instrumented by the compile step). */
  readonly memories: FreshMemoryPool | undefined;
  /** Why the module's memory plan is unreadable, if it is: every evaluation then fails closed. */
  readonly #planError: unknown;
  readonly #holder: StateHolder = { state: undefined };
  readonly #host: WebAssembly.Imports = createHostImports(this.#holder);
  /** Import objects per pooled memory, so a recycled memory costs no new object. */
  readonly #imports = new WeakMap<WebAssembly.Memory, WebAssembly.Imports>();

  /**
   * `growable: false`: the memories never grow (their maximum is the plan's initial size), so a
   * memory.grow of the guest is refused; for the speculative runs on the daemon's main thread,
   * whose isolate must never own a grown memory (speculative/inline-runner.ts).
   */
  constructor(module: WebAssembly.Module, options: { growable?: boolean } = {}) {
    this.module = module;
    let plan = null;
    try {
      plan = memoryPlanOf(module);
    } catch (err) {
      this.#planError = err;
    }
    if (plan !== null && options.growable === false) plan = { ...plan, maximumPages: plan.initialPages };
    this.memories = plan === null ? undefined : new FreshMemoryPool(plan);
  }

  /** A fresh instance; never throws (an instantiation error is kept for the evaluation to report). */
  prepare(): PreparedInstance {
    const t0 = performance.now();
    let instance: WebAssembly.Instance | undefined;
    let memory: WebAssembly.Memory | undefined;
    let error: unknown;
    try {
      if (this.#planError !== undefined) throw this.#planError;
      memory = this.memories?.take();
      instance = new WebAssembly.Instance(this.module, this.#importsFor(memory));
    } catch (err) {
      error = err;
    }
    return { holder: this.#holder, instance, error, instantiateUs: (performance.now() - t0) * 1000, memory };
  }

  /** Gives the memory of an instance whose evaluation has ended back to the pool; returns the
   * bytes the pool dropped (0: recycled, or no pooled memory). */
  recycle(prepared: PreparedInstance): number {
    return prepared.memory !== undefined ? (this.memories?.give(prepared.memory) ?? 0) : 0;
  }

  /** The bytes recycle(prepared) would drop now (the worker answers before it recycles). */
  dropsOnRecycle(prepared: PreparedInstance): number {
    return prepared.memory !== undefined ? (this.memories?.dropsOnGive(prepared.memory) ?? 0) : 0;
  }

  #importsFor(memory: WebAssembly.Memory | undefined): WebAssembly.Imports {
    if (memory === undefined) return this.#host;
    let imports = this.#imports.get(memory);
    if (imports === undefined) {
      imports = withMemory(this.#host, memory);
      this.#imports.set(memory, imports);
    }
    return imports;
  }
}
