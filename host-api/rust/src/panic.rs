//! A panic says why: the hook logs `panic: <message> at <file>:<line>:<column>` as an error line
//! (the audit record, the simulator's output), then the panic aborts (a wasm trap; the decision
//! is a deny `trap` that names the function). Installed by `evaluate`, once per instance.

use std::string::String;

use crate::abi;
use crate::types::LogLevel;

static mut INSTALLED: bool = false;

pub(crate) fn install_hook() {
    // Single-threaded (wasm32-unknown-unknown): a plain flag is enough.
    unsafe {
        if INSTALLED {
            return;
        }
        INSTALLED = true;
    }
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic");
        let line = match info.location() {
            Some(at) => format!("panic: {} at {}:{}:{}", message, at.file(), at.line(), at.column()),
            None => format!("panic: {}", message),
        };
        abi::log(LogLevel::Error as i32, &line);
    }));
}
