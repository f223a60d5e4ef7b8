/*
 * One set-memlock round trip: connect (or reuse), send, read the answer within the deadline,
 * parse it strictly. Async-signal-safe (see internal.h): the preload shim runs it after fork().
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/**
 * Reads one answer: its head (at most CAPGATE_HEAD_MAX bytes), then exactly Content-Length
 * bytes of body. `*got` counts the bytes received, so the caller knows whether any arrived.
 */
static int read_answer(int fd, char *buf, int64_t deadline, struct capgate_response *r, size_t *got, struct capgate_text *msg) {
  size_t len = 0;
  size_t head_end = 0;
  size_t total = 0;
  for (;;) {
    ssize_t n = capgate__recv_some(fd, buf + len, CAPGATE_RESPONSE_MAX - len, deadline, msg);
    if (n < 0) return (int)n;
    if (n == 0) {
      if (len == 0) {
        capgate__text_set(msg, "capgate closed the connection without answering");
        return -ECONNRESET;
      }
      capgate__text_set(msg, "capgate's answer was truncated: the connection closed after ");
      capgate__text_u64(msg, len);
      capgate__text_str(msg, head_end == 0 ? " bytes, inside the head" : " bytes, inside the body");
      return -EPROTO;
    }
    size_t before = len;
    len += (size_t)n;
    *got = len;
    if (head_end == 0) {
      head_end = capgate__find_head_end(buf, len, before);
      if (head_end > CAPGATE_HEAD_MAX || (head_end == 0 && len >= CAPGATE_HEAD_MAX)) {
        capgate__text_set(msg, "capgate's answer has a head longer than 8192 bytes");
        return -EMSGSIZE;
      }
      if (head_end == 0) continue;
      int rc = capgate__parse_head(buf, head_end, r, msg);
      if (rc < 0) return rc;
      total = r->head_len + r->body_len;
    }
    if (len > total) {
      capgate__text_set(msg, "capgate sent more bytes than its answer announced (Content-Length ");
      capgate__text_u64(msg, r->body_len);
      capgate__text_str(msg, ")");
      return -EPROTO;
    }
    if (len == total) return 0;
  }
}

static int errno_for_status(int status) {
  switch (status) {
    case 400: case 411: case 413: case 415: case 431: return -EINVAL;
    case 403: return -EACCES;
    case 404: case 405: case 501: case 505: return -ENOTSUP;
    case 408: return -ETIMEDOUT;
    case 429: return -EAGAIN; /* this VM's share is used up while others ask: as 503, retry later */
    case 500: return -EIO;
    case 503: return -EAGAIN;
    default: return -EPROTO;
  }
}

static int refused(const char *buf, const struct capgate_response *r, struct capgate_text *msg) {
  char code[64];
  char detail[CAPGATE_MESSAGE_MAX];
  struct capgate_text d;
  capgate__text_init(&d, detail, sizeof detail);
  int parsed = r->json ? capgate__parse_error(buf + r->head_len, r->body_len, code, sizeof code, &d) : -EPROTO;
  capgate__text_set(msg, "capgate answered HTTP ");
  capgate__text_u64(msg, (uint64_t)r->status);
  if (parsed < 0) {
    capgate__text_str(msg, " without its error body");
    if (r->json) {
      capgate__text_str(msg, ": ");
      capgate__text_str(msg, detail);
    }
    return -EPROTO;
  }
  capgate__text_str(msg, " ");
  capgate__text_str(msg, code);
  capgate__text_str(msg, ": ");
  capgate__text_str(msg, detail);
  return errno_for_status(r->status);
}

/**
 * Sends the request and reads one answer, on `*fd` or a new connection: a kept connection the
 * daemon closed as we reused it (it never read the request) is retried once on a new one.
 */
static int exchange(const struct capgate_config *cfg, int *fd, const char *request, size_t request_len, int64_t deadline, char *buf, struct capgate_response *r, struct capgate_text *msg) {
  for (int attempt = 0;; attempt++) {
    int reused = *fd >= 0;
    if (reused && capgate__connection_stale(*fd)) {
      capgate__close(*fd);
      *fd = -1;
      reused = 0;
    }
    if (*fd < 0) {
      int c = capgate__connect(cfg->socket_path, deadline, msg);
      if (c < 0) return c;
      *fd = c;
    }
    size_t got = 0;
    int rc = capgate__send_all(*fd, request, request_len, deadline, msg);
    if (rc == 0) rc = read_answer(*fd, buf, deadline, r, &got, msg);
    if (rc == 0) return 0;
    capgate__close(*fd);
    *fd = -1;
    if (reused && attempt == 0 && got == 0 && (rc == -EPIPE || rc == -ECONNRESET)) continue;
    return rc;
  }
}

/**
 * Whether to ask again after a refusal: the daemon said when (429 for this VM's share, 503 when
 * it is overloaded or its policy still compiles) and that wait ends before the call's deadline.
 * set-memlock is idempotent, and a refused request was neither evaluated nor audited.
 */
static int worth_retrying(const struct capgate_response *r, int retries, int64_t deadline) {
  if (r->status != 429 && r->status != 503) return 0;
  if (r->retry_after_s < 0 || retries >= CAPGATE_RETRIES_MAX) return 0;
  return capgate__now_ms() + (int64_t)r->retry_after_s * 1000 < deadline;
}

int capgate__set_memlock(const struct capgate_config *cfg, int *fd, int keep, pid_t pid, uint64_t bytes, struct capgate_decision *out) {
  struct capgate_text msg;
  capgate__text_init(&msg, out->message, sizeof out->message);
  out->allow = 0;
  out->reason[0] = '\0';
  out->decision_id[0] = '\0';
  out->error_kind[0] = '\0';
  if (pid <= 0) {
    capgate__text_set(&msg, "pid must be a positive process id");
    return -EINVAL;
  }
  if (cfg->socket_path[0] == '\0') {
    capgate__text_set(&msg, "the client has no socket path (not initialised)");
    return -EINVAL;
  }
  char request[256];
  size_t request_len = capgate__format_set_memlock(request, sizeof request, pid, bytes, !keep);
  if (request_len == 0) {
    capgate__text_set(&msg, "the request does not fit its buffer");
    return -EINVAL;
  }
  const int64_t deadline = capgate__now_ms() + cfg->timeout_ms;
  char buf[CAPGATE_RESPONSE_MAX];
  struct capgate_response r;
  for (int retries = 0;; retries++) {
    int rc = exchange(cfg, fd, request, request_len, deadline, buf, &r, &msg);
    if (rc < 0) return rc;
    if (!keep || !r.keep_alive) {
      capgate__close(*fd);
      *fd = -1;
    }
    if (r.status == 200) break;
    if (!worth_retrying(&r, retries, deadline)) {
      rc = refused(buf, &r, &msg);
      if (retries > 0) {
        capgate__text_str(&msg, " (asked ");
        capgate__text_u64(&msg, (uint64_t)retries + 1);
        capgate__text_str(&msg, " times, as Retry-After said, within the timeout)");
      }
      return rc;
    }
    capgate__sleep_until(capgate__now_ms() + (int64_t)r.retry_after_s * 1000);
  }
  if (!r.json) {
    capgate__text_set(&msg, "capgate's answer is not application/json");
    return -EPROTO;
  }
  int rc = capgate__parse_decision(buf + r.head_len, r.body_len, out, &msg);
  if (rc < 0) {
    out->allow = 0;
    out->reason[0] = '\0';
    out->decision_id[0] = '\0';
    out->error_kind[0] = '\0';
    /* The connection may hold bytes of a bad answer: never reuse it. */
    capgate__close(*fd);
    *fd = -1;
    return rc;
  }
  capgate__text_set(&msg, "");
  return 0;
}
