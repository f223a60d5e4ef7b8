/*
 * libcapgate-preload.so: lets an unmodified program (libvirt) get RLIMIT_MEMLOCK raised by
 * capgate when the kernel refuses it. prlimit, prlimit64, setrlimit and setrlimit64 call the
 * real function first; only when that fails with EPERM, for RLIMIT_MEMLOCK, with soft == hard,
 * is capgate asked to set the limit of the target (the caller itself for setrlimit). On allow
 * the limit is read back and the call succeeds only if it is exactly what was asked; on deny,
 * timeout, no daemon or anything else the caller gets -1 and EPERM, as it would without the shim.
 *
 * libvirt sets limits between fork() and exec(), so everything after the constructor is
 * async-signal-safe: stack buffers only; no malloc, stdio, locks or getenv; the calls made are
 * socket, connect, getsockopt, send, recv, poll, close, open, read, write, getpid and
 * clock_gettime (all on POSIX's async-signal-safe list) and syscall(SYS_prlimit64) (a
 * register-shuffling stub in glibc and musl). The shim is linked with -z now, so no lazy
 * symbol binding (which takes the dynamic linker's lock) happens on this path either.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#if defined(__GLIBC__)
typedef __rlimit_resource_t resource_t; /* glibc declares these with an enum under _GNU_SOURCE */
#else
typedef int resource_t;
#endif

/*
 * glibc 2.34 moved dlsym into libc under a new default version; binding the original one
 * keeps the shim loadable by older glibc (virt-launcher images lag the build host).
 */
#if defined(__GLIBC__) && defined(__x86_64__)
__asm__(".symver dlsym, dlsym@GLIBC_2.2.5");
#elif defined(__GLIBC__) && defined(__aarch64__)
__asm__(".symver dlsym, dlsym@GLIBC_2.17");
#endif

#define LOG_ENV "CAPGATE_PRELOAD_LOG"
#define TIMEOUT_ENV "CAPGATE_PRELOAD_TIMEOUT_MS"

typedef int (*prlimit_fn)(pid_t, resource_t, const struct rlimit *, struct rlimit *);
typedef int (*prlimit64_fn)(pid_t, resource_t, const struct rlimit64 *, struct rlimit64 *);
typedef int (*setrlimit_fn)(resource_t, const struct rlimit *);
typedef int (*setrlimit64_fn)(resource_t, const struct rlimit64 *);

/* Written once, by the constructor; only read afterwards. */
static prlimit_fn real_prlimit;
static prlimit64_fn real_prlimit64;
static setrlimit_fn real_setrlimit;
static setrlimit64_fn real_setrlimit64;
static struct capgate_config config;
static int configured;
static int log_enabled;

struct limits {
  uint64_t soft;
  uint64_t hard;
};

/* ---- logging: one line per brokered call, with write(2) ---- */

static void log_write(struct capgate_text *t) {
  capgate__text_str(t, "\n");
  if (t->overflow && t->len > 0) t->buf[t->len - 1] = '\n';
  const char *p = t->buf;
  size_t left = t->len;
  while (left > 0) {
    ssize_t n = write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= (size_t)n;
  }
}

static void log_limit(struct capgate_text *t, uint64_t v) {
  if (v == UINT64_MAX) capgate__text_str(t, "unlimited");
  else capgate__text_u64(t, v);
}

/** "capgate-preload[pid]: fn(pid N, RLIMIT_MEMLOCK, soft:hard): EPERM; " */
static void log_start(struct capgate_text *t, const char *fn, pid_t target, uint64_t soft, uint64_t hard) {
  capgate__text_str(t, "capgate-preload[");
  capgate__text_i64(t, getpid());
  capgate__text_str(t, "]: ");
  capgate__text_str(t, fn);
  capgate__text_str(t, "(pid ");
  capgate__text_i64(t, target);
  capgate__text_str(t, ", RLIMIT_MEMLOCK, ");
  log_limit(t, soft);
  capgate__text_str(t, ":");
  log_limit(t, hard);
  capgate__text_str(t, "): EPERM from the kernel; ");
}

/* ---- reading a limit back ---- */

static int parse_limit_token(const char **p, const char *end, uint64_t *out) {
  while (*p < end && **p == ' ') (*p)++;
  if (end - *p >= 9 && memcmp(*p, "unlimited", 9) == 0) {
    *p += 9;
    *out = UINT64_MAX;
    return 0;
  }
  uint64_t v = 0;
  const char *start = *p;
  while (*p < end && **p >= '0' && **p <= '9') {
    uint64_t d = (uint64_t)(**p - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
    (*p)++;
  }
  if (*p == start) return -1;
  *out = v;
  return 0;
}

/** From /proc/<pid>/limits (world-readable), for a process we may not prlimit ourselves. */
static int read_proc_limits(pid_t pid, struct limits *l) {
  char path[40];
  struct capgate_text t;
  capgate__text_init(&t, path, sizeof path);
  capgate__text_str(&t, "/proc/");
  capgate__text_i64(&t, pid);
  capgate__text_str(&t, "/limits");
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -1;
  char buf[4096];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    if (len == sizeof buf - 1) break;
  }
  capgate__close(fd);
  static const char label[] = "\nMax locked memory";
  const char *end = buf + len;
  for (const char *p = buf; p + sizeof label - 1 <= end; p++) {
    if (memcmp(p, label, sizeof label - 1) != 0) continue;
    p += sizeof label - 1;
    if (parse_limit_token(&p, end, &l->soft) != 0 || parse_limit_token(&p, end, &l->hard) != 0) return -1;
    return 0;
  }
  return -1;
}

static int read_limits(pid_t pid, struct limits *l) {
  struct rlimit64 cur;
  if (syscall(SYS_prlimit64, pid, RLIMIT_MEMLOCK, NULL, &cur) == 0) {
    l->soft = cur.rlim_cur;
    l->hard = cur.rlim_max;
    return 0;
  }
  return read_proc_limits(pid, l);
}

/* ---- asking capgate ---- */

/**
 * After the kernel said EPERM: asks capgate to set `target`'s limit to soft = hard = `hard`.
 * 0 when it did and the limit now reads back as asked (with the previous limits in *before
 * when asked for), else -1 with errno EPERM.
 */
static int broker(const char *fn, pid_t target, uint64_t soft, uint64_t hard, struct limits *before) {
  char line[768];
  struct capgate_text t;
  capgate__text_init(&t, line, sizeof line);
  if (log_enabled) log_start(&t, fn, target, soft, hard);
  const char *declined = NULL;
  if (!configured) declined = "not asking capgate: the shim is not configured (see the line it wrote at start-up)";
  else if (target <= 0) declined = "not asking capgate: no such target";
  /* capgate sets soft and hard alike: a different soft limit could not be honoured exactly. */
  else if (soft != hard) declined = "not asking capgate: soft != hard (capgate sets both to one value)";
  else if (before != NULL && read_limits(target, before) != 0) declined = "not asking capgate: the old limit (asked for) cannot be read";
  if (declined != NULL) {
    if (log_enabled) {
      capgate__text_str(&t, declined);
      log_write(&t);
    }
    errno = EPERM;
    return -1;
  }
  struct capgate_decision d;
  int fd = -1;
  int rc = capgate__set_memlock(&config, &fd, 0, target, hard, &d);
  int ok = 0;
  if (rc < 0) {
    if (log_enabled) {
      capgate__text_str(&t, "capgate unavailable (");
      capgate__text_str(&t, capgate__errno_name(rc));
      capgate__text_str(&t, "): ");
      capgate__text_printable(&t, d.message, strlen(d.message), 300);
    }
  } else if (!d.allow) {
    if (log_enabled) {
      /* A policy's reason is its own text: no control bytes into the caller's log. */
      capgate__text_str(&t, "capgate denied: ");
      capgate__text_printable(&t, d.reason, strlen(d.reason), 200);
      capgate__text_str(&t, " (decision ");
      capgate__text_printable(&t, d.decision_id, strlen(d.decision_id), 64);
      capgate__text_str(&t, ")");
    }
  } else {
    struct limits now;
    if (read_limits(target, &now) != 0) {
      if (log_enabled) capgate__text_str(&t, "capgate allowed, but the limit cannot be read back; failing");
    } else if (now.soft != soft || now.hard != hard) {
      if (log_enabled) {
        capgate__text_str(&t, "capgate allowed, but the limit reads back as ");
        log_limit(&t, now.soft);
        capgate__text_str(&t, ":");
        log_limit(&t, now.hard);
        capgate__text_str(&t, "; failing");
      }
    } else {
      ok = 1;
      if (log_enabled) {
        capgate__text_str(&t, "capgate allowed (decision ");
        capgate__text_printable(&t, d.decision_id, strlen(d.decision_id), 64);
        capgate__text_str(&t, ")");
      }
    }
  }
  if (log_enabled) log_write(&t);
  if (!ok) {
    errno = EPERM;
    return -1;
  }
  return 0;
}

/* ---- the four entry points ---- */

static uint64_t rlim_to_u64(rlim_t v) {
  return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

static rlim_t u64_to_rlim(uint64_t v) {
  return v == UINT64_MAX || v >= (uint64_t)RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)v;
}

/* Before the constructor ran (another library's constructor calling us), or if dlsym failed. */
static int raw_prlimit(pid_t pid, resource_t resource, const struct rlimit *new_limit, struct rlimit *old_limit) {
  struct rlimit64 n, o;
  if (new_limit != NULL) {
    n.rlim_cur = rlim_to_u64(new_limit->rlim_cur);
    n.rlim_max = rlim_to_u64(new_limit->rlim_max);
  }
  long rc = syscall(SYS_prlimit64, pid, (int)resource, new_limit != NULL ? &n : NULL, old_limit != NULL ? &o : NULL);
  if (rc == 0 && old_limit != NULL) {
    old_limit->rlim_cur = u64_to_rlim(o.rlim_cur);
    old_limit->rlim_max = u64_to_rlim(o.rlim_max);
  }
  return (int)rc;
}

static int raw_prlimit64(pid_t pid, resource_t resource, const struct rlimit64 *new_limit, struct rlimit64 *old_limit) {
  return (int)syscall(SYS_prlimit64, pid, (int)resource, new_limit, old_limit);
}

/** The target of a prlimit: pid 0 is the caller. */
static pid_t target_of(pid_t pid) {
  return pid == 0 ? getpid() : pid;
}

CAPGATE_API int prlimit(pid_t pid, resource_t resource, const struct rlimit *new_limit, struct rlimit *old_limit) {
  int saved = errno;
  int rc = real_prlimit != NULL ? real_prlimit(pid, resource, new_limit, old_limit) : raw_prlimit(pid, resource, new_limit, old_limit);
  if (rc == 0 || resource != RLIMIT_MEMLOCK || new_limit == NULL || errno != EPERM) return rc;
  struct limits before;
  if (broker("prlimit", target_of(pid), rlim_to_u64(new_limit->rlim_cur), rlim_to_u64(new_limit->rlim_max), old_limit != NULL ? &before : NULL) != 0) return -1;
  if (old_limit != NULL) {
    old_limit->rlim_cur = u64_to_rlim(before.soft);
    old_limit->rlim_max = u64_to_rlim(before.hard);
  }
  errno = saved;
  return 0;
}

CAPGATE_API int prlimit64(pid_t pid, resource_t resource, const struct rlimit64 *new_limit, struct rlimit64 *old_limit) {
  int saved = errno;
  int rc = real_prlimit64 != NULL ? real_prlimit64(pid, resource, new_limit, old_limit) : raw_prlimit64(pid, resource, new_limit, old_limit);
  if (rc == 0 || resource != RLIMIT_MEMLOCK || new_limit == NULL || errno != EPERM) return rc;
  struct limits before;
  if (broker("prlimit64", target_of(pid), new_limit->rlim_cur, new_limit->rlim_max, old_limit != NULL ? &before : NULL) != 0) return -1;
  if (old_limit != NULL) {
    old_limit->rlim_cur = before.soft;
    old_limit->rlim_max = before.hard;
  }
  errno = saved;
  return 0;
}

CAPGATE_API int setrlimit(resource_t resource, const struct rlimit *limit) {
  int saved = errno;
  int rc = real_setrlimit != NULL ? real_setrlimit(resource, limit) : raw_prlimit(0, resource, limit, NULL);
  if (rc == 0 || resource != RLIMIT_MEMLOCK || errno != EPERM) return rc;
  if (broker("setrlimit", getpid(), rlim_to_u64(limit->rlim_cur), rlim_to_u64(limit->rlim_max), NULL) != 0) return -1;
  errno = saved;
  return 0;
}

CAPGATE_API int setrlimit64(resource_t resource, const struct rlimit64 *limit) {
  int saved = errno;
  int rc = real_setrlimit64 != NULL ? real_setrlimit64(resource, limit) : raw_prlimit64(0, resource, limit, NULL);
  if (rc == 0 || resource != RLIMIT_MEMLOCK || errno != EPERM) return rc;
  if (broker("setrlimit64", getpid(), limit->rlim_cur, limit->rlim_max, NULL) != 0) return -1;
  errno = saved;
  return 0;
}

/* ---- the constructor: the only place that reads the environment or resolves symbols ---- */

static void *next_symbol(const char *name) {
  return dlsym(RTLD_NEXT, name);
}

static const char *environment(const char *name) {
#if defined(__GLIBC__)
  return secure_getenv(name);
#else
  return getenv(name);
#endif
}

/** A configuration problem is reported once, at load, whether or not logging is on. */
static void config_error(const char *what, const char *value) {
  char line[512];
  struct capgate_text t;
  capgate__text_init(&t, line, sizeof line);
  capgate__text_str(&t, "capgate-preload: ");
  capgate__text_str(&t, what);
  if (value != NULL) {
    capgate__text_str(&t, " (\"");
    capgate__text_printable(&t, value, strlen(value), 120);
    capgate__text_str(&t, "\")");
  }
  log_write(&t);
}

__attribute__((constructor)) static void capgate_preload_init(void) {
  void *p;
  p = next_symbol("prlimit");
  memcpy(&real_prlimit, &p, sizeof p);
  p = next_symbol("prlimit64");
  memcpy(&real_prlimit64, &p, sizeof p);
  p = next_symbol("setrlimit");
  memcpy(&real_setrlimit, &p, sizeof p);
  p = next_symbol("setrlimit64");
  memcpy(&real_setrlimit64, &p, sizeof p);

  const char *log = environment(LOG_ENV);
  log_enabled = log != NULL && strcmp(log, "1") == 0;

  int timeout_ms = 0;
  const char *timeout = environment(TIMEOUT_ENV);
  if (timeout != NULL && timeout[0] != '\0') {
    long v = 0;
    const char *c = timeout;
    while (*c >= '0' && *c <= '9' && v <= CAPGATE_MAX_TIMEOUT_MS) v = v * 10 + (*c++ - '0');
    if (*c != '\0' || v < 1 || v > CAPGATE_MAX_TIMEOUT_MS) {
      config_error(TIMEOUT_ENV " must be milliseconds from 1 to 600000; using the default 5000", timeout);
    } else {
      timeout_ms = (int)v;
    }
  }
  const char *socket_path = environment(CAPGATE_SOCKET_ENV);
  if (capgate__config_init(&config, NULL, socket_path, timeout_ms) == 0) {
    configured = 1;
  } else {
    config_error(CAPGATE_SOCKET_ENV " is longer than 107 bytes; capgate will not be asked", socket_path);
  }
}
