// memlock-cap: a VM may lock as much memory as its guest RAM (label `memory-bytes`, registered by
// the management layer) plus a fixed overhead for the VMM's own pinned buffers.
// Behaviour is specified in guest-examples/README.md and shared with the Rust and C versions.
import {
  Decision, Operation, Request, CapabilityError, LogLevel,
  allow, deny, log, policy, queryVmIdentity, setMemlock, capabilityErrorName,
} from "../../../host-api/assemblyscript/index";
export * from "../../../host-api/assemblyscript/abi";

const MEMORY_LABEL = "memory-bytes";
const OVERHEAD: u64 = 268435456; // 256 MiB

// AssemblyScript has no tuples: parseBytes reports success and leaves the value here.
let parsedBytes: u64 = 0;

/** Accepts 1 to 20 decimal digits whose value fits a u64; stores it in parsedBytes. */
function parseBytes(text: string): bool {
  const n = text.length;
  if (n == 0 || n > 20) return false;
  let value: u64 = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    const digit = <u64>(c - 48);
    // value * 10 + digit must stay <= u64 max.
    if (value > (U64.MAX_VALUE - digit) / 10) return false;
    value = value * 10 + digit;
  }
  parsedBytes = value;
  return true;
}

function decide(req: Request): Decision {
  if (req.operation != Operation.SetMemlock) return deny("unsupported-operation");
  const vm = queryVmIdentity(req.targetPid);
  if (vm === null) return deny("target-not-in-requester-vm");
  const label = vm.label(MEMORY_LABEL);
  if (label === null || !parseBytes(label)) return deny("missing-memory-bytes-label");
  const memory = parsedBytes;
  const cap: u64 = memory > U64.MAX_VALUE - OVERHEAD ? U64.MAX_VALUE : memory + OVERHEAD;
  if (req.bytes > cap) {
    log(LogLevel.Warn, "request exceeds memory-bytes plus overhead");
    return deny("over-cap");
  }
  const err = setMemlock(req.targetPid, req.bytes);
  if (err != CapabilityError.None) return deny("set-memlock-failed: " + capabilityErrorName(err));
  log(LogLevel.Info, "memlock raised");
  return allow();
}

policy(decide);
