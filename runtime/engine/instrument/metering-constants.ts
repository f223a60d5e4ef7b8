// Fuel rates the instrumenter writes into the module, without binaryen: the verifier (../verify/)
// checks the compile process's output against them.

/** One fuel unit per 2^4 = 16 bytes of a bulk operation (bulk-memory.ts). */
export const BULK_BYTES_PER_FUEL_LOG2 = 4;

/**
 * Fuel of every memory.grow, whatever its delta and outcome. Only a grow that succeeds reaches
 * V8's memory.grow (see addGrowHelper): ~1.5-4 µs measured, for detaching the memory's buffer,
 * making a new one and updating every instance on the memory's list, which the fresh-memory pool
 * bounds (MAX_MEMORY_USES). A grow(0) or a refused grow is a few instructions, charged the same
 * so that what a run is charged does not depend on how it is answered.
 */
export const MEMORY_GROW_FUEL = 256;
