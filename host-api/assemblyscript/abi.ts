// The core-module exports the world `policy` needs, and nothing else: the entry file
// re-exports this module whole (`export * from ".../abi"`).
//   evaluate(op, requester-pid, requester-uid, target-pid, bytes: i64) -> retptr
//   cabi_post_evaluate(retptr), cabi_realloc(old, old-size, align, new-size) -> ptr
// Allocation is the stub runtime's bump heap; cabi_post_evaluate rewinds it to where evaluate
// started, after the host has copied the result out (not at the start of the next evaluate).
import { Operation, Request } from "./types";
import { markArena, rewindArena } from "./arena";
import { registeredPolicy } from "./policy";
import { toUtf8 } from "./strings";
// Compiles the abort handler in: `--use abort=capgateAbort` points AssemblyScript's abort at it.
import "./abort";

// decision: u8 discriminant @0 (0 allow, 1 deny), deny string ptr @4, len @8; size 12, align 4.
const DECISION_RET: usize = memory.data(12, 4);

export function evaluate(op: i32, requesterPid: u32, requesterUid: u32, targetPid: u32, bytes: u64): usize {
  markArena();
  const decide = registeredPolicy();
  if (decide === null) return denyWith("policy-not-registered: call policy(decide) at module scope");
  const decision = decide(new Request(<Operation>op, requesterPid, requesterUid, targetPid, bytes));
  if (decision.allowed) {
    store<u8>(DECISION_RET, 0);
    store<usize>(DECISION_RET, 0, 4);
    store<usize>(DECISION_RET, 0, 8);
    return DECISION_RET;
  }
  return denyWith(decision.reason);
}

function denyWith(reason: string): usize {
  const utf8 = toUtf8(reason);
  store<u8>(DECISION_RET, 1);
  store<usize>(DECISION_RET, changetype<usize>(utf8), 4);
  store<usize>(DECISION_RET, <usize>utf8.byteLength, 8);
  return DECISION_RET;
}

export function cabi_post_evaluate(retptr: usize): void {
  // Everything evaluate allocated (request objects, strings, the deny reason) is garbage now.
  rewindArena();
}

export function cabi_realloc(oldPtr: usize, oldSize: usize, align: usize, newSize: usize): usize {
  // The stub heap aligns every block to 16 bytes, enough for every type in the contract.
  if (align > 16) unreachable();
  if (oldPtr == 0) return heap.alloc(newSize);
  return heap.realloc(oldPtr, newSize);
}
