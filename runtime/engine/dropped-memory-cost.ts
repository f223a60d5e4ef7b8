// What a dropped wasm memory costs after the decision that dropped it. A memory that grew cannot
// be recycled (fresh-memory-pool.ts), and V8 frees it only in a full garbage collection of the
// isolate that made it. V8 counts the bytes of live and dead wasm memories as external memory and
// starts an incremental mark-compact of that isolate every ~34 MiB of it (trace: "external memory
// pressure"); its marking and sweeping run mostly on V8's platform threads, which every isolate
// shares, after the evaluation has answered: no scheduler slot holds that time.
// Measured on the 2-core VM (Node 20.20, the daemon storming the page-storm policy of
// test/support/hostile-policies.ts, which drops 1.375 MiB a decision, from its evaluation worker):
// one mark-compact of the worker's ~5 MB heap per ~25 decisions, ~8 ms of platform-thread CPU
// each; 0.21-0.24 ms of platform-thread CPU per MiB dropped over a calm run of the same policy
// (and 5-8 ms of the worker's own thread per collection, inside the decisions that meet it).
// Scavenges do not free these memories, and a smaller young generation does not make the
// mark-compacts rarer (measured: --max-semi-space-size=1 left their count unchanged).

/** CPU time (ms) the garbage collection of one MiB of dropped wasm memory takes after the decision. */
export const DROPPED_MEMORY_MS_PER_MIB = 0.22;

const MIB = 1024 * 1024;

/** The cost (ms) of `bytes` of dropped memory at `msPerMiB`. */
export function droppedMemoryCostMs(bytes: number | undefined, msPerMiB = DROPPED_MEMORY_MS_PER_MIB): number {
  return bytes !== undefined && bytes > 0 ? (bytes / MIB) * msPerMiB : 0;
}
