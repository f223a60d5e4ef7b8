//! Write capgate policies in Rust: implement `fn(&Request) -> Decision` and export it with
//! [`export_policy!`]. The crate carries all canonical-ABI glue for the world
//! `capgate:policy@1.0.0` (`evaluate`, `cabi_realloc`, `cabi_post_evaluate`); build with
//! `--target wasm32-unknown-unknown` as a `cdylib` and componentize against host-api/wit.

#[cfg(not(target_arch = "wasm32"))]
compile_error!("capgate-policy builds policies for WebAssembly only: cargo build --release --target wasm32-unknown-unknown");

mod abi;
pub mod host;
mod panic;
mod quantity;
mod types;

pub use host::{log, query_vm_identity, set_memlock};
pub use quantity::{format_bytes, parse_quantity};
pub use types::{allow, deny, CapabilityError, Decision, LogLevel, Operation, Request, VmIdentity, MEMLOCK_UNLIMITED};

#[doc(hidden)]
pub mod __private {
    pub use crate::abi::evaluate_with;
}

/// Exports `policy: fn(&Request) -> Decision` as the component's `evaluate`.
///
/// ```ignore
/// fn evaluate(req: &capgate_policy::Request) -> capgate_policy::Decision { capgate_policy::allow() }
/// capgate_policy::export_policy!(evaluate);
/// ```
#[macro_export]
macro_rules! export_policy {
    ($policy:path) => {
        #[export_name = "evaluate"]
        pub unsafe extern "C" fn __capgate_export_evaluate(op: i32, requester_pid: i32, requester_uid: i32, target_pid: i32, bytes: i64) -> *mut u8 {
            $crate::__private::evaluate_with($policy, op, requester_pid, requester_uid, target_pid, bytes)
        }
    };
}
