/* Bounded text without stdio (snprintf is not async-signal-safe), and the configuration. */
#include <errno.h>
#include <string.h>

#include "internal.h"

void capgate__text_init(struct capgate_text *t, char *buf, size_t cap) {
  t->buf = buf;
  t->cap = cap;
  t->len = 0;
  t->overflow = 0;
  if (cap > 0) buf[0] = '\0';
}

void capgate__text_mem(struct capgate_text *t, const char *s, size_t n) {
  if (t->cap == 0) {
    t->overflow = 1;
    return;
  }
  size_t room = t->cap - 1 - t->len;
  if (n > room) {
    n = room;
    t->overflow = 1;
  }
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

void capgate__text_str(struct capgate_text *t, const char *s) {
  capgate__text_mem(t, s, strlen(s));
}

void capgate__text_u64(struct capgate_text *t, uint64_t v) {
  char digits[20];
  size_t n = 0;
  do {
    digits[sizeof digits - 1 - n] = (char)('0' + v % 10);
    v /= 10;
    n++;
  } while (v != 0);
  capgate__text_mem(t, digits + sizeof digits - n, n);
}

void capgate__text_i64(struct capgate_text *t, int64_t v) {
  if (v < 0) {
    capgate__text_mem(t, "-", 1);
    capgate__text_u64(t, (uint64_t)0 - (uint64_t)v);
  } else {
    capgate__text_u64(t, (uint64_t)v);
  }
}

void capgate__text_printable(struct capgate_text *t, const char *s, size_t n, size_t max) {
  size_t shown = n < max ? n : max;
  for (size_t i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    char out = c >= 0x20 && c < 0x7f ? (char)c : '?';
    capgate__text_mem(t, &out, 1);
  }
  if (n > max) capgate__text_str(t, "...");
}

void capgate__text_set(struct capgate_text *t, const char *s) {
  t->len = 0;
  t->overflow = 0;
  if (t->cap > 0) t->buf[0] = '\0';
  capgate__text_str(t, s);
}

const char *capgate__errno_name(int error) {
  switch (error < 0 ? -error : error) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EPIPE: return "EPIPE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EPROTO: return "EPROTO";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOTSUP: return "ENOTSUP";
    case ENOTSOCK: return "ENOTSOCK";
    case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EPROTOTYPE: return "EPROTOTYPE";
    default: return "an error";
  }
}

int capgate__config_init(struct capgate_config *c, const char *explicit_path, const char *env_path, int timeout_ms) {
  const char *path = explicit_path != NULL ? explicit_path : env_path != NULL && env_path[0] != '\0' ? env_path : CAPGATE_DEFAULT_SOCKET;
  size_t n = strlen(path);
  c->socket_path[0] = '\0';
  c->timeout_ms = CAPGATE_DEFAULT_TIMEOUT_MS;
  if (timeout_ms < 0 || timeout_ms > CAPGATE_MAX_TIMEOUT_MS) return -EINVAL;
  if (n == 0) return -EINVAL;
  if (n >= sizeof c->socket_path) return -ENAMETOOLONG;
  memcpy(c->socket_path, path, n + 1);
  c->timeout_ms = timeout_ms == 0 ? CAPGATE_DEFAULT_TIMEOUT_MS : timeout_ms;
  return 0;
}
