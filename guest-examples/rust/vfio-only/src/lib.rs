//! vfio-only: device passthrough (VFIO) must pin all guest memory, so VMs labelled `vfio=true`
//! get unlimited memlock, whatever amount they asked for; every other VM is refused
//! (see guest-examples/README.md).

use capgate_policy::{allow, deny, export_policy, log, query_vm_identity, set_memlock, Decision, LogLevel, Operation, Request, MEMLOCK_UNLIMITED};

fn evaluate(req: &Request) -> Decision {
    if req.operation != Operation::SetMemlock {
        return deny("unsupported-operation");
    }
    let vm = match query_vm_identity(req.target_pid) {
        Some(vm) => vm,
        None => return deny("target-not-in-requester-vm"),
    };
    if vm.label("vfio") != Some("true") {
        return deny("vm-not-vfio");
    }
    if let Err(e) = set_memlock(req.target_pid, MEMLOCK_UNLIMITED) {
        let mut reason = String::from("set-memlock-failed: ");
        reason.push_str(e.wit_name());
        return Decision::Deny(reason);
    }
    log(LogLevel::Info, "vfio memlock set to unlimited");
    allow()
}

export_policy!(evaluate);
