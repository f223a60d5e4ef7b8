/*
 * What the library's files share, and what the preload shim uses. Everything declared here is
 * async-signal-safe: no allocation, no stdio, no locks, no getenv; only stack buffers and the
 * system calls socket, connect, getsockopt, send, recv, poll, close, clock_gettime and nanosleep.
 */
#ifndef CAPGATE_INTERNAL_H
#define CAPGATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "capgate.h"

#define CAPGATE_API __attribute__((visibility("default")))

/* sizeof(((struct sockaddr_un *)0)->sun_path) on Linux; the path needs its NUL. */
#define CAPGATE_SOCKET_PATH_MAX 108

/* Bounds of an answer: the daemon's are ~150 bytes of head and < 1 KiB of body (a deny reason
 * of 4096 bytes escaped as \u00XX is the worst case, ~25 KiB). */
#define CAPGATE_HEAD_MAX 8192
#define CAPGATE_BODY_MAX 32768
#define CAPGATE_RESPONSE_MAX (CAPGATE_HEAD_MAX + CAPGATE_BODY_MAX)
#define CAPGATE_HEADER_FIELDS_MAX 64

/* ---- configuration ---- */

struct capgate_config {
  char socket_path[CAPGATE_SOCKET_PATH_MAX];
  int timeout_ms;
};

/**
 * Fills `c` from an explicit path (else `env_path`, else the default) and a timeout (0:
 * default). The caller reads the environment, once, where that is safe. 0, -EINVAL or -ENAMETOOLONG.
 */
int capgate__config_init(struct capgate_config *c, const char *explicit_path, const char *env_path, int timeout_ms);

/* ---- bounded text (messages, request bytes): never overflows, always NUL-terminated ---- */

struct capgate_text {
  char *buf;
  size_t cap;
  size_t len;
  /** Something did not fit (and was cut). */
  int overflow;
};

void capgate__text_init(struct capgate_text *t, char *buf, size_t cap);
void capgate__text_mem(struct capgate_text *t, const char *s, size_t n);
void capgate__text_str(struct capgate_text *t, const char *s);
void capgate__text_u64(struct capgate_text *t, uint64_t v);
void capgate__text_i64(struct capgate_text *t, int64_t v);
/** Bytes of untrusted input, shown with anything but printable ASCII as '?', at most `max` of them. */
void capgate__text_printable(struct capgate_text *t, const char *s, size_t n, size_t max);
/** Replaces the text (a message) with `s`. */
void capgate__text_set(struct capgate_text *t, const char *s);
const char *capgate__errno_name(int error);

/* ---- HTTP ---- */

/** Request bytes of one set-memlock; the length, or 0 if `cap` is too small. */
size_t capgate__format_set_memlock(char *buf, size_t cap, pid_t pid, uint64_t bytes, int close_connection);

struct capgate_response {
  int status;
  /** The connection may carry another request. */
  int keep_alive;
  /** Content-Type is application/json. */
  int json;
  /** Bytes of the head, through its final CRLF CRLF. */
  size_t head_len;
  size_t body_len;
  /** Retry-After in seconds (delta-seconds, at most CAPGATE_RETRY_AFTER_MAX_S), or -1: none or not a number. */
  int retry_after_s;
};

/* A Retry-After past this is not waited for: the call fails with the daemon's answer instead. */
#define CAPGATE_RETRY_AFTER_MAX_S 3600
/* Answers with a Retry-After that one call follows at most (each wait still fits in its deadline). */
#define CAPGATE_RETRIES_MAX 8

/** Where the head ends (the offset just past CRLF CRLF), searching from `from`; 0 if not yet. */
size_t capgate__find_head_end(const char *buf, size_t len, size_t from);

/** Parses a complete head (`buf[0..head_len)`, as found by capgate__find_head_end). 0 or -errno + message. */
int capgate__parse_head(const char *buf, size_t head_len, struct capgate_response *r, struct capgate_text *msg);

/* ---- JSON bodies ---- */

/** Parses a 200 body into out->allow/reason/decision_id/error_kind. 0 or -EPROTO/-EMSGSIZE + message. */
int capgate__parse_decision(const char *body, size_t len, struct capgate_decision *out, struct capgate_text *msg);

/**
 * Parses an error body {"error":{"code","message","hint"?,...}}: its code into `code`, and
 * "message (hint)" appended to `msg`. 0 or -EPROTO.
 */
int capgate__parse_error(const char *body, size_t len, char *code, size_t code_cap, struct capgate_text *msg);

/* ---- transport ---- */

/** CLOCK_MONOTONIC in milliseconds. */
int64_t capgate__now_ms(void);
/** A connected, non-blocking, close-on-exec stream socket, or -errno. */
int capgate__connect(const char *path, int64_t deadline, struct capgate_text *msg);
int capgate__send_all(int fd, const char *buf, size_t len, int64_t deadline, struct capgate_text *msg);
/** > 0 bytes read, 0 at end of stream, or -errno (-ETIMEDOUT at the deadline). */
ssize_t capgate__recv_some(int fd, char *buf, size_t cap, int64_t deadline, struct capgate_text *msg);
/** The peer closed the connection or sent bytes nobody asked for: it cannot carry a request. */
int capgate__connection_stale(int fd);
void capgate__close(int fd);
/** Sleeps until CLOCK_MONOTONIC reaches `at_ms` (nanosleep, resumed after a signal). */
void capgate__sleep_until(int64_t at_ms);

/* ---- one set-memlock round trip ---- */

/**
 * Sends one set-memlock over `*fd` (-1: connects first) and reads the answer. Keeps `*fd` open
 * when `keep` and the answer allow it, else closes it and sets -1. A kept connection the
 * daemon closed meanwhile is retried once on a new one (set-memlock is idempotent). An answer
 * of 429 or 503 with a Retry-After is asked again after that many seconds, as long as the wait
 * ends before the call's deadline (at most CAPGATE_RETRIES_MAX times).
 */
int capgate__set_memlock(const struct capgate_config *cfg, int *fd, int keep, pid_t pid, uint64_t bytes, struct capgate_decision *out);

#endif /* CAPGATE_INTERNAL_H */
