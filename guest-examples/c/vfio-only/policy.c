/* vfio-only: device passthrough (VFIO) must pin all guest memory, so VMs labelled vfio=true get
 * unlimited memlock, whatever amount they asked for; every other VM is refused
 * (see guest-examples/README.md). */
#include "capgate_policy.h"

capgate_decision capgate_evaluate(const capgate_request *req) {
  if (req->operation != CAPGATE_OPERATION_SET_MEMLOCK) return capgate_deny("unsupported-operation");

  capgate_vm_identity vm;
  if (!capgate_query_vm_identity(req->target_pid, &vm)) return capgate_deny("target-not-in-requester-vm");

  capgate_string vfio;
  if (!capgate_vm_identity_label(&vm, "vfio", &vfio) || !capgate_string_equals(vfio, "true")) {
    return capgate_deny("vm-not-vfio");
  }

  capgate_capability_error error;
  if (!capgate_set_memlock(req->target_pid, CAPGATE_MEMLOCK_UNLIMITED, &error)) {
    return capgate_deny_concat("set-memlock-failed: ", capgate_capability_error_name(error));
  }
  capgate_log(CAPGATE_LOG_INFO, "vfio memlock set to unlimited");
  return capgate_allow();
}
