/* memlock-cap: a VM may lock as much memory as its guest RAM (label memory-bytes, registered by
 * the management layer) plus a fixed overhead for the VMM's own pinned buffers
 * (see guest-examples/README.md). */
#include "capgate_policy.h"

#define MEMORY_LABEL "memory-bytes"
#define OVERHEAD 268435456ull /* 256 MiB */

/* 1 to 20 decimal digits (no sign, no spaces) whose value fits a u64. */
static bool parse_bytes(capgate_string text, uint64_t *out) {
  if (text.len == 0 || text.len > 20) return false;
  uint64_t value = 0;
  for (uint32_t i = 0; i < text.len; i++) {
    char c = text.ptr[i];
    if (c < '0' || c > '9') return false;
    uint64_t digit = (uint64_t)(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

capgate_decision capgate_evaluate(const capgate_request *req) {
  if (req->operation != CAPGATE_OPERATION_SET_MEMLOCK) return capgate_deny("unsupported-operation");

  capgate_vm_identity vm;
  if (!capgate_query_vm_identity(req->target_pid, &vm)) return capgate_deny("target-not-in-requester-vm");

  capgate_string label;
  uint64_t memory;
  if (!capgate_vm_identity_label(&vm, MEMORY_LABEL, &label) || !parse_bytes(label, &memory)) {
    return capgate_deny("missing-memory-bytes-label");
  }
  uint64_t cap = memory > UINT64_MAX - OVERHEAD ? UINT64_MAX : memory + OVERHEAD;

  if (req->bytes > cap) {
    capgate_log(CAPGATE_LOG_WARN, "request exceeds memory-bytes plus overhead");
    return capgate_deny("over-cap");
  }

  capgate_capability_error error;
  if (!capgate_set_memlock(req->target_pid, req->bytes, &error)) {
    return capgate_deny_concat("set-memlock-failed: ", capgate_capability_error_name(error));
  }
  capgate_log(CAPGATE_LOG_INFO, "memlock raised");
  return capgate_allow();
}
