// What making a fresh instance of a policy costs, known at upload: what the module declares
// (bounded by the upload limits, instrument/module-limits.ts) and a timed trial instantiation.
// A decision instantiates the policy every time, so this decides where that may happen: only a
// policy well inside the inline bounds below is ever instantiated on the daemon's main thread
// (engine/speculative/); any other runs in a worker from the start.
import { createHostImports } from './abi/host-imports.ts';
import { invalidModule } from './component/rejection.ts';
import type { ModuleShape } from './instrument/module-limits.ts';
import { policyImports } from './policy-memory.ts';

export interface InstantiationCost {
  /** Table entries (initial sizes, all tables). */
  tableEntries: number;
  elementEntries: number;
  dataBytes: number;
  globals: number;
  /** Initial memory pages (a recycled memory is scrubbed over them after every decision). */
  initialPages: number;
  /** Fastest of the trial instantiations at upload, in microseconds. */
  trialUs: number;
}

/** What a module of this shape costs to instantiate, with its trial's time. */
export function instantiationCost(shape: ModuleShape, trialUs: number): InstantiationCost {
  return {
    tableEntries: shape.tables.reduce((n, t) => n + t.initial, 0),
    elementEntries: shape.elementEntries,
    dataBytes: shape.dataBytes,
    globals: shape.globals,
    initialPages: shape.memoryPages,
    trialUs,
  };
}

/**
 * Bounds on what the main thread instantiates, from measurements on the 2-core VM (Node 20):
 * ~20 ns per table entry, ~100-200 ns per element entry, ~0.5 ns per data byte, ~30 ns per
 * global, so at most ~100 µs together; plus the scrub of the recycled memory (initial pages).
 */
export const INLINE_INSTANTIATION = Object.freeze({
  tableEntries: 1024,
  elementEntries: 256,
  dataBytes: 64 * 1024,
  globals: 256,
  initialPages: 32,
  trialUs: 1000,
});

/** True when instances of the policy may be made on the main thread. */
export function instantiatesInline(cost: InstantiationCost | undefined): boolean {
  if (cost === undefined) return false; // unknown cost: never on the main thread
  const b = INLINE_INSTANTIATION;
  return (
    cost.tableEntries <= b.tableEntries &&
    cost.elementEntries <= b.elementEntries &&
    cost.dataBytes <= b.dataBytes &&
    cost.globals <= b.globals &&
    cost.initialPages <= b.initialPages &&
    cost.trialUs <= b.trialUs
  );
}

const TRIALS = 3;

/**
 * Instantiates the compiled module TRIALS times (no guest code runs: the instrumentation defers
 * the start function) and returns the fastest, in microseconds; refuses the policy when even
 * that took `maxMs` or more. `now` is milliseconds (a seam for tests).
 */
export function trialInstantiation(
  module: WebAssembly.Module,
  maxMs: number,
  now: () => number = () => performance.now(),
): number {
  const host = createHostImports({ state: undefined });
  let best = Infinity;
  for (let i = 0; i < TRIALS; i++) {
    const imports = policyImports(module, host);
    const t0 = now();
    try {
      new WebAssembly.Instance(module, imports);
    } catch (err) {
      throw invalidModule(`the policy cannot be instantiated: ${err instanceof Error ? err.message : String(err)}`);
    }
    best = Math.min(best, now() - t0);
  }
  if (best >= maxMs)
    throw invalidModule(
      `instantiating the policy took ${best.toFixed(1)} ms in a trial at upload; the limit is ${maxMs} ms (limits.maxInstantiateMs)`,
    );
  return Math.round(best * 1000);
}
