//! memlock-cap: a VM may lock as much memory as its guest RAM (label `memory-bytes`, registered
//! by the management layer) plus a fixed overhead for the VMM's own pinned buffers
//! (see guest-examples/README.md).

use capgate_policy::{allow, deny, export_policy, log, query_vm_identity, set_memlock, Decision, LogLevel, Operation, Request};

const MEMORY_LABEL: &str = "memory-bytes";
const OVERHEAD: u64 = 268_435_456; // 256 MiB

/// 1 to 20 decimal digits (no sign, no spaces) whose value fits a u64.
fn parse_bytes(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for b in text.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

fn evaluate(req: &Request) -> Decision {
    if req.operation != Operation::SetMemlock {
        return deny("unsupported-operation");
    }
    let vm = match query_vm_identity(req.target_pid) {
        Some(vm) => vm,
        None => return deny("target-not-in-requester-vm"),
    };
    let memory = match vm.label(MEMORY_LABEL).and_then(parse_bytes) {
        Some(memory) => memory,
        None => return deny("missing-memory-bytes-label"),
    };
    let cap = memory.saturating_add(OVERHEAD);
    if req.bytes > cap {
        log(LogLevel::Warn, "request exceeds memory-bytes plus overhead");
        return deny("over-cap");
    }
    if let Err(e) = set_memlock(req.target_pid, req.bytes) {
        let mut reason = String::from("set-memlock-failed: ");
        reason.push_str(e.wit_name());
        return Decision::Deny(reason);
    }
    log(LogLevel::Info, "memlock raised");
    allow()
}

export_policy!(evaluate);
