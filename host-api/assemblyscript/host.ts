// The host interface (capgate:policy/host@1.0.0): raw imports and their typed wrappers.
// Layouts follow the canonical ABI; the return areas are static (one call at a time).
import { CapabilityError, Label, LogLevel, VmIdentity } from "./types";
import { readUtf8, toUtf8 } from "./strings";

// @ts-ignore: decorator
@external("capgate:policy/host@1.0.0", "set-memlock")
declare function hostSetMemlock(pid: u32, bytes: u64, retptr: usize): void;

// @ts-ignore: decorator
@external("capgate:policy/host@1.0.0", "query-vm-identity")
declare function hostQueryVmIdentity(pid: u32, retptr: usize): void;

// @ts-ignore: decorator
@external("capgate:policy/host@1.0.0", "log")
declare function hostLog(level: i32, ptr: usize, len: usize): void;

// result<_, capability-error>: u8 discriminant @0, u8 error @1.
const SET_MEMLOCK_RET: usize = memory.data(2, 1);
// option<vm-identity>: u8 discriminant @0, uuid @4, name @12, id @20, labels @24; size 32, align 4.
const QUERY_RET: usize = memory.data(32, 4);
// Each label is tuple<string, string>: key ptr @0, key len @4, value ptr @8, value len @12.
const LABEL_SIZE: usize = 16;

/** Sets soft and hard RLIMIT_MEMLOCK of `pid` (a pid in the requester's own VM). None on success. */
export function setMemlock(pid: u32, bytes: u64): CapabilityError {
  hostSetMemlock(pid, bytes, SET_MEMLOCK_RET);
  if (load<u8>(SET_MEMLOCK_RET) == 0) return CapabilityError.None;
  const e = <i32>load<u8>(SET_MEMLOCK_RET, 1);
  // A host that sends an unknown case is broken; report it as internal, never as success.
  return e <= <i32>CapabilityError.Internal ? <CapabilityError>e : CapabilityError.Internal;
}

/** The VM `pid` belongs to, if that VM is the requester's own; null otherwise. */
export function queryVmIdentity(pid: u32): VmIdentity | null {
  hostQueryVmIdentity(pid, QUERY_RET);
  if (load<u8>(QUERY_RET) == 0) return null;
  const uuid = readUtf8(load<usize>(QUERY_RET, 4), load<usize>(QUERY_RET, 8));
  const name = readUtf8(load<usize>(QUERY_RET, 12), load<usize>(QUERY_RET, 16));
  const id = load<i32>(QUERY_RET, 20);
  const listPtr = load<usize>(QUERY_RET, 24);
  const count = <i32>load<usize>(QUERY_RET, 28);
  const labels = new Array<Label>(count);
  for (let i = 0; i < count; i++) {
    const at = listPtr + <usize>i * LABEL_SIZE;
    const key = readUtf8(load<usize>(at, 0), load<usize>(at, 4));
    const value = readUtf8(load<usize>(at, 8), load<usize>(at, 12));
    unchecked((labels[i] = new Label(key, value)));
  }
  return new VmIdentity(uuid, name, id, labels);
}

/** A line for the decision's audit record and the simulator's report. */
export function log(level: LogLevel, message: string): void {
  const utf8 = toUtf8(message);
  hostLog(<i32>level, changetype<usize>(utf8), <usize>utf8.byteLength);
}
