// The protocol between the compile step's instrumentation and the run-time side: exports the
// instrumented core module carries next to the guest's own.

/** Mutable i64: remaining fuel, initialised to limits.fuel; < 0 after a trap = fuel-exhausted. */
export const FUEL_GLOBAL = '__capgate_fuel';
/** Mutable i32: 1 once a memory.grow was refused by the memory cap. */
export const OOM_GLOBAL = '__capgate_oom';
// The guest's start function is deferred by the instrumentation into the first exported call, so
// a trap there happens with the globals above readable (a trap inside instantiation leaves none).

export interface InstrumentationView {
  /**
   * Remaining fuel as a number, NaN if the module is not instrumented. Exact: the fuel is set from
   * a number budget and only ever decreases, far within 2^53. (Reading an i64 global makes a
   * bigint: every host call reads it, and bigint arithmetic on it made three more.)
   */
  fuelLeft(): number;
  /** Sets the remaining fuel (before the first call: the budget of this run; host calls: what is left after their charge). False if not instrumented. */
  setFuel(budget: number): boolean;
  oom(): boolean;
}

/** One object per instance, its methods on the prototype: every evaluation makes one, and a
 * view of four closures cost ~4x the bytes. */
class Globals implements InstrumentationView {
  readonly #fuel: WebAssembly.Global | undefined;
  readonly #oom: WebAssembly.Global | undefined;

  constructor(exports: WebAssembly.Exports) {
    const fuel = exports[FUEL_GLOBAL];
    const oom = exports[OOM_GLOBAL];
    this.#fuel = fuel instanceof WebAssembly.Global ? fuel : undefined;
    this.#oom = oom instanceof WebAssembly.Global ? oom : undefined;
  }

  fuelLeft(): number {
    return this.#fuel === undefined ? Number.NaN : Number(this.#fuel.value as bigint);
  }

  setFuel(budget: number): boolean {
    if (this.#fuel === undefined) return false;
    this.#fuel.value = BigInt(budget);
    return true;
  }

  oom(): boolean {
    return this.#oom !== undefined && Number(this.#oom.value) === 1;
  }
}

export function instrumentationView(exports: WebAssembly.Exports): InstrumentationView {
  return new Globals(exports);
}

// The instrumented module does not define its memory: it imports it (instrument/memory-import.ts),
// so the run time can give each fresh instance a recycled, zeroed memory (fresh-memory-pool.ts).
export const MEMORY_IMPORT_MODULE = 'capgate:engine';
export const MEMORY_IMPORT_NAME = 'memory';
/** Custom section with the imported memory's limits: initial and maximum pages, u32 LE each. */
export const MEMORY_PLAN_SECTION = 'capgate:memory-plan';
