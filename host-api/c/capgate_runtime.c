/* capgate C runtime: canonical-ABI glue for the world capgate:policy@1.0.0 (legacy core names),
 * a heap the host also allocates from, and the few libc routines clang may emit calls to.
 *
 * Layouts (wasm32, little-endian):
 *   evaluate returns a pointer to `decision`: u8 disc @0 (0 allow, 1 deny), string ptr @4, len @8.
 *   set-memlock writes result<_, capability-error> at retptr: u8 disc @0, u8 error @1.
 *   query-vm-identity writes option<vm-identity> at retptr: u8 disc @0, record @4: uuid (ptr,len) @4,
 *   name (ptr,len) @12, id s32 @20, labels (ptr,len) @24; each label 16 bytes (key ptr,len, value
 *   ptr,len). Strings and lists are allocated by the host through cabi_realloc. */
#include "capgate_policy.h"

#if !defined(__wasm32__)
#error "capgate policies build for WebAssembly only: clang --target=wasm32 -ffreestanding -nostdlib ... (see host-api/c/README.md)"
#endif

#define HOST_MODULE "capgate:policy/host@1.0.0"
#define WASM_PAGE 65536u

__attribute__((import_module(HOST_MODULE), import_name("set-memlock")))
extern void capgate_host_set_memlock(int32_t pid, int64_t bytes, uint8_t *retptr);
__attribute__((import_module(HOST_MODULE), import_name("query-vm-identity")))
extern void capgate_host_query_vm_identity(int32_t pid, uint8_t *retptr);
__attribute__((import_module(HOST_MODULE), import_name("log")))
extern void capgate_host_log(int32_t level, const char *ptr, int32_t len);

/* ---- libc routines the compiler may call for struct copies and zeroing ---- */

void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d < s) {
    while (n--) *d++ = *s++;
  } else {
    while (n--) d[n] = s[n];
  }
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x - *y;
  return 0;
}

/* ---- heap: bump allocation from __heap_base, growing memory on demand ---- */

extern unsigned char __heap_base;
static uintptr_t heap_top; /* 0 until first use */
static uintptr_t last_block; /* start of the most recent allocation, for in-place free/grow */

static uintptr_t heap_start(void) { return (uintptr_t)&__heap_base; }

static bool heap_reserve(uintptr_t end) {
  uintptr_t have = __builtin_wasm_memory_size(0) * WASM_PAGE;
  if (end <= have) return true;
  uintptr_t pages = (end - have + WASM_PAGE - 1) / WASM_PAGE;
  return __builtin_wasm_memory_grow(0, pages) != (size_t)-1;
}

void *capgate_alloc(uint32_t size, uint32_t align) {
  if (heap_top == 0) heap_top = heap_start();
  if (align == 0 || (align & (align - 1)) != 0) return NULL;
  uintptr_t start = (heap_top + align - 1) & ~(uintptr_t)(align - 1);
  uintptr_t end = start + size;
  if (end < start || !heap_reserve(end)) return NULL;
  heap_top = end;
  last_block = start;
  return (void *)start;
}

void capgate_free(void *ptr, uint32_t size) {
  /* Only the most recent block can be given back; the rest goes at the post-return reset. */
  if (ptr != NULL && (uintptr_t)ptr == last_block && last_block + size == heap_top) heap_top = last_block;
}

static void heap_reset(void) {
  heap_top = heap_start();
  last_block = 0;
}

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old_ptr, uint32_t old_size, uint32_t align, uint32_t new_size) {
  if (old_ptr != NULL && (uintptr_t)old_ptr == last_block && last_block + old_size == heap_top) {
    /* Grow or shrink the newest block in place. */
    if (heap_reserve(last_block + new_size)) {
      heap_top = last_block + new_size;
      return old_ptr;
    }
    __builtin_trap();
  }
  void *fresh = capgate_alloc(new_size, align);
  /* Out of memory: trap, the host turns that into a deny (fail closed). */
  if (fresh == NULL) __builtin_trap();
  if (old_ptr != NULL) memcpy(fresh, old_ptr, old_size < new_size ? old_size : new_size);
  return fresh;
}

/* ---- strings ---- */

uint32_t capgate_strlen(const char *s) {
  uint32_t n = 0;
  while (s[n]) n++;
  return n;
}

capgate_string capgate_str(const char *s) {
  capgate_string out = {s, capgate_strlen(s)};
  return out;
}

bool capgate_string_equals(capgate_string a, const char *b) {
  uint32_t n = capgate_strlen(b);
  return a.len == n && memcmp(a.ptr, b, n) == 0;
}

/* ---- host capabilities ---- */

/* Static import return area: never on the stack, aligned for the record's u32 fields. */
static uint8_t import_area[32] __attribute__((aligned(8)));

static uint32_t read_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static capgate_string read_string(const uint8_t *p) {
  capgate_string s = {(const char *)(uintptr_t)read_u32(p), read_u32(p + 4)};
  return s;
}

bool capgate_set_memlock(uint32_t pid, uint64_t bytes, capgate_capability_error *error) {
  capgate_host_set_memlock((int32_t)pid, (int64_t)bytes, import_area);
  if (import_area[0] == 0) return true;
  /* An error code outside the contract is reported as internal, never as success. */
  uint8_t code = import_area[1];
  if (error != NULL) *error = code <= CAPGATE_ERROR_INTERNAL ? (capgate_capability_error)code : CAPGATE_ERROR_INTERNAL;
  return false;
}

bool capgate_query_vm_identity(uint32_t pid, capgate_vm_identity *out) {
  capgate_host_query_vm_identity((int32_t)pid, import_area);
  if (import_area[0] == 0) return false;
  out->uuid = read_string(import_area + 4);
  out->name = read_string(import_area + 12);
  out->id = (int32_t)read_u32(import_area + 20);
  /* A host label is (key ptr,len, value ptr,len), exactly capgate_label's layout on wasm32. */
  out->labels = (capgate_label *)(uintptr_t)read_u32(import_area + 24);
  out->labels_len = read_u32(import_area + 28);
  return true;
}

void capgate_vm_identity_free(capgate_vm_identity *vm) {
  /* Freed in reverse allocation order so the bump heap can give back what it can. */
  for (uint32_t i = vm->labels_len; i-- > 0;) {
    capgate_free((void *)vm->labels[i].value.ptr, vm->labels[i].value.len);
    capgate_free((void *)vm->labels[i].key.ptr, vm->labels[i].key.len);
  }
  capgate_free(vm->labels, vm->labels_len * (uint32_t)sizeof(capgate_label));
  capgate_free((void *)vm->name.ptr, vm->name.len);
  capgate_free((void *)vm->uuid.ptr, vm->uuid.len);
  memset(vm, 0, sizeof *vm);
}

_Static_assert(sizeof(capgate_label) == 16, "capgate_label must match the canonical-ABI tuple layout");

void capgate_log_string(capgate_log_level level, capgate_string message) {
  capgate_host_log((int32_t)level, message.ptr, (int32_t)message.len);
}

void capgate_log(capgate_log_level level, const char *message) {
  capgate_log_string(level, capgate_str(message));
}

bool capgate_vm_identity_label(const capgate_vm_identity *vm, const char *key, capgate_string *value) {
  for (uint32_t i = 0; i < vm->labels_len; i++) {
    if (capgate_string_equals(vm->labels[i].key, key)) {
      *value = vm->labels[i].value;
      return true;
    }
  }
  return false;
}

const char *capgate_capability_error_name(capgate_capability_error error) {
  switch (error) {
    case CAPGATE_ERROR_NOT_PERMITTED: return "not-permitted";
    case CAPGATE_ERROR_NO_SUCH_PROCESS: return "no-such-process";
    case CAPGATE_ERROR_OUT_OF_SCOPE: return "out-of-scope";
    case CAPGATE_ERROR_INVALID_ARGUMENT: return "invalid-argument";
    case CAPGATE_ERROR_QUOTA_EXCEEDED: return "quota-exceeded";
    case CAPGATE_ERROR_INTERNAL: return "internal";
  }
  return "internal";
}

/* ---- decisions ---- */

capgate_decision capgate_allow(void) {
  capgate_decision d = {CAPGATE_ALLOW, {0, 0}};
  return d;
}

capgate_decision capgate_deny_concat(const char *prefix, const char *detail) {
  uint32_t a = capgate_strlen(prefix), b = capgate_strlen(detail);
  char *buf = cabi_realloc(NULL, 0, 1, a + b);
  memcpy(buf, prefix, a);
  memcpy(buf + a, detail, b);
  capgate_decision d = {CAPGATE_DENY, {buf, a + b}};
  return d;
}

capgate_decision capgate_deny(const char *reason) { return capgate_deny_concat(reason, ""); }

/* ---- the export ---- */

static uint8_t decision_area[16] __attribute__((aligned(8)));

static void write_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

__attribute__((export_name("evaluate")))
uint8_t *capgate_export_evaluate(int32_t op, int32_t requester_pid, int32_t requester_uid, int32_t target_pid, int64_t bytes) {
  /* An enum value outside the contract traps, as the canonical ABI requires (fail closed). */
  if ((uint32_t)op > CAPGATE_OPERATION_SET_MEMLOCK) __builtin_trap();
  capgate_request req = {
      (capgate_operation)op, (uint32_t)requester_pid, (uint32_t)requester_uid, (uint32_t)target_pid, (uint64_t)bytes,
  };
  capgate_decision d = capgate_evaluate(&req);
  memset(decision_area, 0, sizeof decision_area);
  if (d.kind == CAPGATE_ALLOW) return decision_area;
  decision_area[0] = 1;
  write_u32(decision_area + 4, (uint32_t)(uintptr_t)d.reason.ptr);
  write_u32(decision_area + 8, d.reason.len);
  return decision_area;
}

/* The host has read the decision: everything this evaluation allocated is garbage now. */
__attribute__((export_name("cabi_post_evaluate")))
void capgate_export_post_evaluate(uint8_t *area) {
  (void)area;
  heap_reset();
}
