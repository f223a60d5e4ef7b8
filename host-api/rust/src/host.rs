//! The capabilities a policy may use (WIT interface `capgate:policy/host@1.0.0`).

use crate::abi;
use crate::types::{CapabilityError, LogLevel, VmIdentity};

/// Sets soft and hard RLIMIT_MEMLOCK of `pid`; the host refuses (`OutOfScope`) any pid outside
/// the requester's own VM. `MEMLOCK_UNLIMITED` means unlimited.
pub fn set_memlock(pid: u32, bytes: u64) -> Result<(), CapabilityError> {
    abi::set_memlock(pid, bytes)
}

/// The VM `pid` belongs to, if that VM is the requester's own; `None` otherwise.
pub fn query_vm_identity(pid: u32) -> Option<VmIdentity> {
    abi::query_vm_identity(pid)
}

/// A line for the decision's audit record and the simulator's report.
pub fn log(level: LogLevel, message: &str) {
    abi::log(level as i32, message)
}
