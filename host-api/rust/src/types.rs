//! Rust mirror of the `capgate:policy/types@1.0.0` interface (host-api/wit/policy.wit).

use std::string::String;
use std::vec::Vec;

/// The privileged operation being requested (WIT `operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    SetMemlock,
}

/// One request (WIT `request`). Pids and uid come from the kernel, never from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub operation: Operation,
    pub requester_pid: u32,
    pub requester_uid: u32,
    pub target_pid: u32,
    /// Requested RLIMIT_MEMLOCK in bytes; [`MEMLOCK_UNLIMITED`] means unlimited.
    pub bytes: u64,
}

/// `u64::MAX`: an unlimited memlock limit (RLIM_INFINITY).
pub const MEMLOCK_UNLIMITED: u64 = u64::MAX;

/// What the trusted management layer registered for a VM (WIT `vm-identity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmIdentity {
    pub uuid: String,
    pub name: String,
    pub id: i32,
    pub labels: Vec<(String, String)>,
}

impl VmIdentity {
    /// The value of the first label named `key`, if any.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The policy's answer (WIT `decision`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

/// `Decision::Allow`.
pub fn allow() -> Decision {
    Decision::Allow
}

/// `Decision::Deny(reason)`.
pub fn deny(reason: &str) -> Decision {
    Decision::Deny(String::from(reason))
}

/// Why a capability call failed (WIT `capability-error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityError {
    NotPermitted,
    NoSuchProcess,
    OutOfScope,
    InvalidArgument,
    QuotaExceeded,
    Internal,
}

impl CapabilityError {
    /// The WIT case name, e.g. `"not-permitted"`: what reasons and logs should say.
    pub fn wit_name(self) -> &'static str {
        match self {
            CapabilityError::NotPermitted => "not-permitted",
            CapabilityError::NoSuchProcess => "no-such-process",
            CapabilityError::OutOfScope => "out-of-scope",
            CapabilityError::InvalidArgument => "invalid-argument",
            CapabilityError::QuotaExceeded => "quota-exceeded",
            CapabilityError::Internal => "internal",
        }
    }

    /// Lifts the canonical-ABI discriminant; `None` for a value the contract does not define.
    pub(crate) fn from_discriminant(d: u8) -> Option<CapabilityError> {
        match d {
            0 => Some(CapabilityError::NotPermitted),
            1 => Some(CapabilityError::NoSuchProcess),
            2 => Some(CapabilityError::OutOfScope),
            3 => Some(CapabilityError::InvalidArgument),
            4 => Some(CapabilityError::QuotaExceeded),
            5 => Some(CapabilityError::Internal),
            _ => None,
        }
    }
}

/// Severity of a log line (WIT `log-level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}
