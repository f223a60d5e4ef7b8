// What a host call costs in fuel. A call into the host costs the host far more than the few
// expressions of the call site that fuel counts, so each host import charges the fuel global
// itself, at the rate the cost model gives guest code (fuel.ts: ~1 unit per 1-5 ns of the
// worst cases measured). Measured on the 2-core VM (Node 20, `npm run bench -- isolation`):
// a log call that decodes nothing ~40-60 ns, decoding ~0.4-1 ns per byte, a capability call a
// /proc walk (30-60 µs, more under load). memory.grow is priced by the instrumentation
// (instrument/memory.ts). Deterministic: the same run is charged the same, on any thread.

/** Every host call, whatever it does (a log line past the caps, a capability call past the quota). */
export const HOST_CALL_FUEL = 128;
/** Per byte of a log line that is decoded (lines past the per-evaluation caps are not). */
export const LOG_BYTE_FUEL = 1;
/** A set-memlock or query-vm-identity that is performed (within the quota), on top of HOST_CALL_FUEL. */
export const CAPABILITY_CALL_FUEL = 16_384;
