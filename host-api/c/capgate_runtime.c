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

capgate_decision capgate_deny_string(capgate_string reason) {
  char *buf = cabi_realloc(NULL, 0, 1, reason.len);
  memcpy(buf, reason.ptr, reason.len);
  capgate_decision d = {CAPGATE_DENY, {buf, reason.len}};
  return d;
}

/* ---- formatting into a bounded buffer ---- */

static void buf_append(capgate_buf *b, const char *s, uint32_t n) {
  uint32_t room = b->cap > b->len ? b->cap - b->len : 0;
  if (n > room) {
    n = room;
    b->truncated = true;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

void capgate_buf_str(capgate_buf *b, const char *s) { buf_append(b, s, capgate_strlen(s)); }

void capgate_buf_string(capgate_buf *b, capgate_string s) { buf_append(b, s.ptr, s.len); }

void capgate_buf_u64(capgate_buf *b, uint64_t value) {
  char digits[20];
  uint32_t n = 0;
  do {
    digits[sizeof digits - 1 - n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  buf_append(b, digits + sizeof digits - n, n);
}

void capgate_buf_i64(capgate_buf *b, int64_t value) {
  if (value < 0) {
    buf_append(b, "-", 1);
    capgate_buf_u64(b, (uint64_t)0 - (uint64_t)value);
  } else {
    capgate_buf_u64(b, (uint64_t)value);
  }
}

/* Binary units, largest first: exact multiples print with the largest unit, unless that leaves a
 * long number (then digits); the same rule as capgate's own output (runtime/simulator/byte-size.ts). */
static const char *const BINARY_UNITS[] = {"Ei", "Pi", "Ti", "Gi", "Mi", "Ki"};

void capgate_buf_bytes(capgate_buf *b, uint64_t bytes) {
  if (bytes == CAPGATE_MEMLOCK_UNLIMITED) {
    capgate_buf_str(b, "unlimited");
    return;
  }
  for (uint32_t i = 0; i < 6; i++) {
    uint32_t shift = 60 - 10 * i;
    uint64_t factor = (uint64_t)1 << shift;
    if (bytes >= factor && bytes % factor == 0) {
      uint64_t q = bytes >> shift;
      if (q >= 1024000u) break;
      capgate_buf_u64(b, q);
      capgate_buf_str(b, BINARY_UNITS[i]);
      return;
    }
  }
  capgate_buf_u64(b, bytes);
}

capgate_string capgate_buf_view(const capgate_buf *b) {
  capgate_string s = {b->data, b->len};
  return s;
}

void capgate_log_buf(capgate_log_level level, const capgate_buf *b) { capgate_log_string(level, capgate_buf_view(b)); }

static uint32_t format_into(char *buf, uint32_t cap, uint64_t value, void (*append)(capgate_buf *, uint64_t)) {
  if (cap == 0) return 0;
  capgate_buf b = {buf, 0, cap - 1, false};
  append(&b, value);
  buf[b.len] = '\0';
  return b.len;
}

uint32_t capgate_format_u64(char *buf, uint32_t cap, uint64_t value) { return format_into(buf, cap, value, capgate_buf_u64); }

uint32_t capgate_format_bytes(char *buf, uint32_t cap, uint64_t bytes) { return format_into(buf, cap, bytes, capgate_buf_bytes); }

/* ---- Kubernetes quantities ---- */

static bool ascii_equal_fold(const char *a, uint32_t n, const char *word) {
  uint32_t i = 0;
  for (; i < n && word[i]; i++) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != word[i]) return false;
  }
  return i == n && word[i] == '\0';
}

/* a * b unless it overflows. In 32-bit halves: the obvious `b > UINT64_MAX / a` check is
 * turned by clang into a 128-bit multiply, a libcall (__multi3) a freestanding build lacks. */
static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
  uint64_t a_hi = a >> 32, b_hi = b >> 32, a_lo = a & 0xffffffffu, b_lo = b & 0xffffffffu;
  if (a_hi != 0 && b_hi != 0) return false;
  uint64_t cross = a_hi * b_lo + b_hi * a_lo; /* one term at most: < 2^64 */
  if ((cross >> 32) != 0) return false;
  uint64_t low = a_lo * b_lo;
  uint64_t result = low + (cross << 32);
  if (result < low) return false;
  *out = result;
  return true;
}

bool capgate_parse_quantity(capgate_string text, uint64_t *bytes) {
  const char *p = text.ptr;
  uint32_t n = text.len;
  while (n > 0 && (*p == ' ' || *p == '\t')) p++, n--;
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
  if (ascii_equal_fold(p, n, "unlimited") || ascii_equal_fold(p, n, "infinity") || ascii_equal_fold(p, n, "max")) {
    *bytes = CAPGATE_MEMLOCK_UNLIMITED;
    return true;
  }
  uint32_t i = 0;
  uint64_t whole = 0;
  if (i == n || p[i] < '0' || p[i] > '9') return false;
  for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
    if (!mul_u64(whole, 10, &whole) || whole > UINT64_MAX - (uint64_t)(p[i] - '0')) return false;
    whole += (uint64_t)(p[i] - '0');
  }
  /* The fraction, trailing zeros dropped: at most 19 significant digits (10^19 fits in u64). */
  uint64_t frac = 0;
  uint32_t frac_digits = 0;
  if (i < n && p[i] == '.') {
    i++;
    uint32_t start = i, end;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {}
    if (i == start) return false;
    for (end = i; end > start && p[end - 1] == '0'; end--) {}
    if (end - start > 19) return false;
    for (uint32_t j = start; j < end; j++) frac = frac * 10 + (uint64_t)(p[j] - '0');
    frac_digits = end - start;
  }
  /* The suffix: a power of two (shift) or of ten (exponent). */
  uint32_t rest = n - i, shift = 0, exponent = 0;
  const char *s = p + i;
  if (rest == 2 && s[1] == 'i') {
    const char *binary = "KMGTPE";
    uint32_t k = 0;
    while (binary[k] && binary[k] != s[0]) k++;
    if (!binary[k]) return false;
    shift = 10 * (k + 1);
  } else if (rest == 1) {
    const char *decimal = "kMGTPE";
    uint32_t k = 0;
    while (decimal[k] && decimal[k] != s[0]) k++;
    if (!decimal[k]) return false;
    exponent = 3 * (k + 1);
  } else if (rest != 0) {
    return false;
  }
  uint64_t factor = shift != 0 ? (uint64_t)1 << shift : 1;
  for (uint32_t e = 0; e < exponent; e++) factor *= 10;
  uint64_t total;
  if (!mul_u64(whole, factor, &total)) return false;
  if (frac_digits > 0) {
    /* frac / 10^d * factor must be whole. 10^d = 2^d * 5^d. */
    uint64_t part;
    if (exponent != 0) {
      if (frac_digits > exponent) return false; /* trailing zeros were dropped: not whole */
      part = frac;
      for (uint32_t e = frac_digits; e < exponent; e++) part *= 10;
    } else {
      uint64_t five = 1;
      for (uint32_t e = 0; e < frac_digits; e++) five *= 5;
      if (frac % five != 0) return false;
      uint64_t h = frac / five; /* < 2^frac_digits */
      if (shift >= frac_digits) {
        part = h << (shift - frac_digits);
      } else {
        uint32_t down = frac_digits - shift;
        if ((h & (((uint64_t)1 << down) - 1)) != 0) return false;
        part = h >> down;
      }
    }
    if (total > UINT64_MAX - part) return false;
    total += part;
  }
  *bytes = total;
  return true;
}

/* ---- crashes ---- */

static bool failing;

_Noreturn void capgate_fail(const char *message, const char *file, uint32_t line, const char *function) {
  /* A failure while reporting a failure only traps. */
  if (!failing) {
    failing = true;
    char storage[512];
    capgate_buf b = CAPGATE_BUF(storage);
    capgate_buf_str(&b, "panic: ");
    capgate_buf_str(&b, message);
    capgate_buf_str(&b, " at ");
    capgate_buf_str(&b, file);
    capgate_buf_str(&b, ":");
    capgate_buf_u64(&b, line);
    capgate_buf_str(&b, " (in ");
    capgate_buf_str(&b, function);
    capgate_buf_str(&b, ")");
    capgate_log_buf(CAPGATE_LOG_ERROR, &b);
  }
  __builtin_trap();
}

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
