/* Write capgate policies in C (WIT world capgate:policy@1.0.0), freestanding: no libc.
 *
 * Define   capgate_decision capgate_evaluate(const capgate_request *req);
 * and compile it together with capgate_runtime.c (the canonical-ABI glue, an allocator,
 * memcpy/memset/memcmp) for --target=wasm32. See README.md. */
#ifndef CAPGATE_POLICY_H
#define CAPGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A UTF-8 string slice; not NUL-terminated. */
typedef struct {
  const char *ptr;
  uint32_t len;
} capgate_string;

/* WIT `operation`. */
typedef enum { CAPGATE_OPERATION_SET_MEMLOCK = 0 } capgate_operation;

/* WIT `request`. Pids and uid come from the kernel, never from the client. */
typedef struct {
  capgate_operation operation;
  uint32_t requester_pid;
  uint32_t requester_uid;
  uint32_t target_pid;
  /* Requested RLIMIT_MEMLOCK in bytes; CAPGATE_MEMLOCK_UNLIMITED means unlimited. */
  uint64_t bytes;
} capgate_request;

#define CAPGATE_MEMLOCK_UNLIMITED UINT64_MAX

typedef struct {
  capgate_string key;
  capgate_string value;
} capgate_label;

/* WIT `vm-identity`. Memory is owned by the runtime's heap; release with capgate_vm_identity_free. */
typedef struct {
  capgate_string uuid;
  capgate_string name;
  int32_t id;
  capgate_label *labels;
  uint32_t labels_len;
} capgate_vm_identity;

/* WIT `capability-error`; the values are the canonical-ABI discriminants. */
typedef enum {
  CAPGATE_ERROR_NOT_PERMITTED = 0,
  CAPGATE_ERROR_NO_SUCH_PROCESS = 1,
  CAPGATE_ERROR_OUT_OF_SCOPE = 2,
  CAPGATE_ERROR_INVALID_ARGUMENT = 3,
  CAPGATE_ERROR_QUOTA_EXCEEDED = 4,
  CAPGATE_ERROR_INTERNAL = 5,
} capgate_capability_error;

/* WIT `log-level`. */
typedef enum {
  CAPGATE_LOG_DEBUG = 0,
  CAPGATE_LOG_INFO = 1,
  CAPGATE_LOG_WARN = 2,
  CAPGATE_LOG_ERROR = 3,
} capgate_log_level;

/* WIT `decision`. Build it with capgate_allow / capgate_deny / capgate_deny_concat. */
typedef enum { CAPGATE_ALLOW = 0, CAPGATE_DENY = 1 } capgate_decision_kind;
typedef struct {
  capgate_decision_kind kind;
  /* Deny reason, already copied to the runtime's heap (freed after the host read it). */
  capgate_string reason;
} capgate_decision;

/* ---- the policy: you define this ---- */
capgate_decision capgate_evaluate(const capgate_request *req);

/* ---- host capabilities ---- */

/* Sets soft and hard RLIMIT_MEMLOCK of pid. Returns true on success; on failure stores the
 * error in *error (if not NULL). Pids outside the requester's own VM fail with OUT_OF_SCOPE. */
bool capgate_set_memlock(uint32_t pid, uint64_t bytes, capgate_capability_error *error);

/* The VM pid belongs to, if it is the requester's own: true and *out filled; false otherwise. */
bool capgate_query_vm_identity(uint32_t pid, capgate_vm_identity *out);

/* Frees what capgate_query_vm_identity allocated (optional: everything is freed after evaluate). */
void capgate_vm_identity_free(capgate_vm_identity *vm);

/* A line for the decision's audit record (message: NUL-terminated UTF-8). */
void capgate_log(capgate_log_level level, const char *message);
void capgate_log_string(capgate_log_level level, capgate_string message);

/* ---- decisions ---- */
capgate_decision capgate_allow(void);
/* reason: NUL-terminated UTF-8, copied. */
capgate_decision capgate_deny(const char *reason);
/* Deny with reason = prefix followed by detail (both NUL-terminated, copied). */
capgate_decision capgate_deny_concat(const char *prefix, const char *detail);
/* Deny with a reason slice (e.g. capgate_buf_view of a formatted buffer), copied. */
capgate_decision capgate_deny_string(capgate_string reason);

/* ---- crashes: say why before trapping ---- */

/* Logs "panic: <message> at <file>:<line> (in <function>)" as an error line, then traps: the
 * decision becomes a deny `trap` whose detail names the trapping function. (C has no column:
 * __builtin_COLUMN in a macro points at the end of its expansion, which would mislead.) */
_Noreturn void capgate_fail(const char *message, const char *file, uint32_t line, const char *function);

/* When cond is false: logs "panic: assertion failed: <cond> at <file>:<line> (in <function>)"
 * and traps. Always checked (a policy fails closed). */
#define CAPGATE_ASSERT(cond) ((cond) ? (void)0 : capgate_fail("assertion failed: " #cond, __FILE__, __LINE__, __func__))
/* Logs "panic: <message> at ..." and traps. */
#define CAPGATE_PANIC(message) capgate_fail((message), __FILE__, __LINE__, __func__)
/* CAPGATE_ASSERT in debug builds (`capgate build --debug` defines CAPGATE_DEBUG), nothing otherwise. */
#ifdef CAPGATE_DEBUG
#define CAPGATE_DEBUG_ASSERT(cond) CAPGATE_ASSERT(cond)
#else
#define CAPGATE_DEBUG_ASSERT(cond) ((void)0)
#endif

/* ---- formatting into a bounded buffer (no heap) ---- */

/* Text built into caller-owned storage. Appends that do not fit are cut at the capacity and set
 * `truncated`; nothing is ever written past `cap`. Not NUL-terminated: use capgate_buf_view. */
typedef struct {
  char *data;
  uint32_t len;
  uint32_t cap;
  bool truncated;
} capgate_buf;

/* A buffer over a char array:  char storage[96]; capgate_buf b = CAPGATE_BUF(storage); */
#define CAPGATE_BUF(array) ((capgate_buf){(array), 0u, (uint32_t)sizeof(array), false})

void capgate_buf_str(capgate_buf *b, const char *s);      /* a NUL-terminated string */
void capgate_buf_string(capgate_buf *b, capgate_string s); /* a slice (e.g. a VM name) */
void capgate_buf_u64(capgate_buf *b, uint64_t value);      /* decimal digits */
void capgate_buf_i64(capgate_buf *b, int64_t value);       /* decimal, with a sign when negative */
/* A byte count as capgate prints sizes: "16Gi", "1536Mi", "64Ki", "1000", "unlimited" (u64 max). */
void capgate_buf_bytes(capgate_buf *b, uint64_t bytes);
capgate_string capgate_buf_view(const capgate_buf *b);
void capgate_log_buf(capgate_log_level level, const capgate_buf *b);

/* One-shot forms: write at most cap - 1 characters and a NUL; return the length without the NUL. */
uint32_t capgate_format_u64(char *buf, uint32_t cap, uint64_t value);
uint32_t capgate_format_bytes(char *buf, uint32_t cap, uint64_t bytes);

/* A Kubernetes quantity, as capgate reads sizes: "16Gi" (binary: Ki Mi Gi Ti Pi Ei), "16G"
 * (decimal: k M G T P E), "1.5Gi", plain digits (bytes), "unlimited" (u64 max). True and *bytes
 * set; false for anything else ("4GB", "64K", overflow, a fraction of a byte). */
bool capgate_parse_quantity(capgate_string text, uint64_t *bytes);

/* ---- helpers ---- */

/* The WIT case name of an error, e.g. "not-permitted". */
const char *capgate_capability_error_name(capgate_capability_error error);

/* The value of the first label named key (NUL-terminated): true and *value set, or false. */
bool capgate_vm_identity_label(const capgate_vm_identity *vm, const char *key, capgate_string *value);

/* A string slice over a NUL-terminated string. */
capgate_string capgate_str(const char *s);
bool capgate_string_equals(capgate_string a, const char *b);
uint32_t capgate_strlen(const char *s);

/* The runtime's heap (the same one the host allocates from): a bump allocator that frees the
 * most recent block in place and is reset after every evaluation. NULL when memory is exhausted. */
void *capgate_alloc(uint32_t size, uint32_t align);
void capgate_free(void *ptr, uint32_t size);

#ifdef __cplusplus
}
#endif

#endif /* CAPGATE_POLICY_H */
