//! Canonical-ABI glue for the world `capgate:policy@1.0.0` (legacy core names), so policy
//! code never touches a pointer. Layouts (wasm32, all little-endian):
//! - `evaluate` returns a pointer to `decision`: u8 disc @0 (0 allow, 1 deny), string ptr @4, len @8.
//! - `set-memlock` writes `result<_, capability-error>` at retptr: u8 disc @0, u8 error @1.
//! - `query-vm-identity` writes `option<vm-identity>` at retptr: u8 disc @0, then the record @4:
//!   uuid (ptr,len) @4, name (ptr,len) @12, id s32 @20, labels (ptr,len) @24, each label 16 bytes
//!   (key ptr,len, value ptr,len). The host allocates every string and list through `cabi_realloc`;
//!   the guest owns them afterwards and frees them.

use std::alloc::{self, Layout};
use std::string::String;
use std::vec::Vec;

use crate::types::{CapabilityError, Decision, Operation, Request, VmIdentity};

#[link(wasm_import_module = "capgate:policy/host@1.0.0")]
extern "C" {
    #[link_name = "set-memlock"]
    fn host_set_memlock(pid: i32, bytes: i64, retptr: *mut u8);
    #[link_name = "query-vm-identity"]
    fn host_query_vm_identity(pid: i32, retptr: *mut u8);
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: i32);
}

/// Static return areas: the host reads/writes them between calls, so they must not live on
/// the (shadow) stack. Aligned to 8 so every field offset is naturally aligned.
#[repr(C, align(8))]
struct ReturnArea([u8; 32]);
static mut DECISION_AREA: ReturnArea = ReturnArea([0; 32]);
static mut IMPORT_AREA: ReturnArea = ReturnArea([0; 32]);

/// The allocator the host uses to place strings and lists in guest memory; std's global
/// allocator (dlmalloc on wasm32-unknown-unknown). Out of memory traps: fail closed.
#[no_mangle]
pub unsafe extern "C" fn cabi_realloc(old_ptr: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    let layout;
    let ptr = if old_size == 0 {
        if new_size == 0 {
            return align as *mut u8;
        }
        layout = Layout::from_size_align_unchecked(new_size, align);
        alloc::alloc(layout)
    } else {
        layout = Layout::from_size_align_unchecked(old_size, align);
        alloc::realloc(old_ptr, layout, new_size)
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable();
    }
    ptr
}

unsafe fn read_u32(p: *const u8) -> u32 {
    (p as *const u32).read_unaligned()
}

/// Takes ownership of a host-allocated (align 1) UTF-8 string.
unsafe fn take_string(ptr: u32, len: u32) -> String {
    // An empty string may come with any pointer (even 0): nothing to own or free.
    if len == 0 {
        return String::new();
    }
    let bytes = Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize);
    // The host encodes with a UTF-8 encoder; a bad byte sequence would be a host bug, and the
    // replacement character keeps it visible instead of trapping.
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

pub(crate) fn set_memlock(pid: u32, bytes: u64) -> Result<(), CapabilityError> {
    unsafe {
        let area = IMPORT_AREA.0.as_mut_ptr();
        host_set_memlock(pid as i32, bytes as i64, area);
        match *area {
            0 => Ok(()),
            // An error code outside the contract is reported as `internal`, never as success.
            _ => Err(CapabilityError::from_discriminant(*area.add(1)).unwrap_or(CapabilityError::Internal)),
        }
    }
}

pub(crate) fn query_vm_identity(pid: u32) -> Option<VmIdentity> {
    unsafe {
        let area = IMPORT_AREA.0.as_mut_ptr();
        host_query_vm_identity(pid as i32, area);
        if *area == 0 {
            return None;
        }
        let uuid = take_string(read_u32(area.add(4)), read_u32(area.add(8)));
        let name = take_string(read_u32(area.add(12)), read_u32(area.add(16)));
        let id = read_u32(area.add(20)) as i32;
        let list = read_u32(area.add(24)) as *mut u8;
        let count = read_u32(area.add(28)) as usize;
        let mut labels = Vec::with_capacity(count);
        for i in 0..count {
            let entry = list.add(i * 16);
            let key = take_string(read_u32(entry), read_u32(entry.add(4)));
            let value = take_string(read_u32(entry.add(8)), read_u32(entry.add(12)));
            labels.push((key, value));
        }
        if count > 0 {
            alloc::dealloc(list, Layout::from_size_align_unchecked(count * 16, 4));
        }
        Some(VmIdentity { uuid, name, id, labels })
    }
}

pub(crate) fn log(level: i32, message: &str) {
    unsafe { host_log(level, message.as_ptr(), message.len() as i32) }
}

/// Lifts the flattened request, runs the policy, lowers the decision into the static area.
/// Called by the `evaluate` export that [`crate::export_policy!`] generates.
#[doc(hidden)]
pub unsafe fn evaluate_with(
    policy: fn(&Request) -> Decision,
    op: i32,
    requester_pid: i32,
    requester_uid: i32,
    target_pid: i32,
    bytes: i64,
) -> *mut u8 {
    crate::panic::install_hook();
    let operation = match op {
        0 => Operation::SetMemlock,
        // An enum value outside the contract: trap, as the canonical ABI requires (fail closed).
        _ => core::arch::wasm32::unreachable(),
    };
    let request = Request {
        operation,
        requester_pid: requester_pid as u32,
        requester_uid: requester_uid as u32,
        target_pid: target_pid as u32,
        bytes: bytes as u64,
    };
    let area = DECISION_AREA.0.as_mut_ptr();
    match policy(&request) {
        Decision::Allow => {
            *area = 0;
        }
        Decision::Deny(reason) => {
            // A boxed str has capacity == length, so post-return can free it from (ptr, len).
            let boxed = reason.into_boxed_str();
            let len = boxed.len();
            let ptr = Box::into_raw(boxed) as *mut u8;
            *area = 1;
            (area.add(4) as *mut u32).write_unaligned(ptr as u32);
            (area.add(8) as *mut u32).write_unaligned(len as u32);
        }
    }
    area
}

/// Frees what `evaluate` handed to the host, once the host has read it.
#[no_mangle]
pub unsafe extern "C" fn cabi_post_evaluate(area: *mut u8) {
    if *area == 1 {
        let ptr = read_u32(area.add(4)) as *mut u8;
        let len = read_u32(area.add(8)) as usize;
        drop(Box::from_raw(core::ptr::slice_from_raw_parts_mut(ptr, len) as *mut str));
    }
}
