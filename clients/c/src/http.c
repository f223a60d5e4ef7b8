/*
 * The HTTP/1.1 of one set-memlock: the request bytes, and a strict parser of the answer's head.
 * The daemon's request socket answers with a status line, a few header fields and a body of
 * exactly Content-Length bytes, never chunked; anything else is refused here, never guessed at:
 * no obs-fold, no bare CR or LF, no NUL or other control bytes, one Content-Length of digits,
 * no Transfer-Encoding, no interim 1xx answer (we send no Expect).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define SET_MEMLOCK_PATH "/v1/operations/set-memlock"

size_t capgate__format_set_memlock(char *buf, size_t cap, pid_t pid, uint64_t bytes, int close_connection) {
  char body_buf[80];
  struct capgate_text body;
  capgate__text_init(&body, body_buf, sizeof body_buf);
  capgate__text_str(&body, "{\"targetPid\":");
  capgate__text_i64(&body, (int64_t)pid);
  /* A decimal string: JSON numbers lose precision above 2^53, u64 max means unlimited. */
  capgate__text_str(&body, ",\"bytes\":\"");
  capgate__text_u64(&body, bytes);
  capgate__text_str(&body, "\"}");

  struct capgate_text t;
  capgate__text_init(&t, buf, cap);
  capgate__text_str(&t, "POST " SET_MEMLOCK_PATH " HTTP/1.1\r\nHost: capgate\r\nContent-Type: application/json\r\nContent-Length: ");
  capgate__text_u64(&t, body.len);
  capgate__text_str(&t, close_connection ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
  capgate__text_mem(&t, body.buf, body.len);
  return body.overflow || t.overflow ? 0 : t.len;
}

size_t capgate__find_head_end(const char *buf, size_t len, size_t from) {
  size_t i = from > 3 ? from - 3 : 0;
  for (; i + 4 <= len; i++) {
    if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') return i + 4;
  }
  return 0;
}

static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values and reason phrases: HTAB, SP, visible ASCII, obs-text. */
static int is_field_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/** `s[0..n)` equals the lower-case literal `lit`, ignoring ASCII case. */
static int iequals(const char *s, size_t n, const char *lit) {
  if (strlen(lit) != n) return 0;
  for (size_t i = 0; i < n; i++) {
    if (lower((unsigned char)s[i]) != (unsigned char)lit[i]) return 0;
  }
  return 1;
}

static int has_close_token(const char *v, size_t n) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t start = i;
    while (i < n && v[i] != ',') i++;
    size_t end = i;
    while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) end--;
    if (iequals(v + start, end - start, "close")) return 1;
  }
  return 0;
}

static int is_json_type(const char *v, size_t n) {
  static const char type[] = "application/json";
  size_t t = sizeof type - 1;
  if (n < t || !iequals(v, t, type)) return 0;
  return n == t || v[t] == ';' || v[t] == ' ' || v[t] == '\t';
}

static int malformed(struct capgate_text *msg, const char *what, const char *line, size_t n) {
  capgate__text_set(msg, "capgate's answer is not the HTTP it sends: ");
  capgate__text_str(msg, what);
  if (line != NULL) {
    capgate__text_str(msg, " in \"");
    capgate__text_printable(msg, line, n, 80);
    capgate__text_str(msg, "\"");
  }
  capgate__text_str(msg, "; is something else listening on the socket?");
  return -EPROTO;
}

/** Checks one line (without its CRLF) for bytes no line may hold. */
static int line_is_clean(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!is_field_char((unsigned char)s[i])) return 0;
  }
  return 1;
}

/**
 * Retry-After as delta-seconds (RFC 9110 10.2.3; the daemon never sends the HTTP-date form).
 * Advice, not part of the answer's meaning: a value this client does not follow (a date, not a
 * number, over CAPGATE_RETRY_AFTER_MAX_S) is -1, and the answer is reported as it is.
 */
static int parse_retry_after(const char *v, size_t n) {
  if (n == 0 || n > 5) return -1;
  int s = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    s = s * 10 + (v[i] - '0');
  }
  return s <= CAPGATE_RETRY_AFTER_MAX_S ? s : -1;
}

static int parse_status_line(const char *s, size_t n, struct capgate_response *r, struct capgate_text *msg) {
  /* HTTP-version SP 3DIGIT SP reason-phrase */
  if (n < 13 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ' || s[12] != ' ') {
    return malformed(msg, "a malformed status line", s, n);
  }
  for (int i = 9; i < 12; i++) {
    if (s[i] < '0' || s[i] > '9') return malformed(msg, "a malformed status code", s, n);
  }
  r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  if (r->status < 100 || r->status > 599) return malformed(msg, "a status code out of range", s, n);
  if (r->status < 200) return malformed(msg, "an interim 1xx answer (no Expect was sent)", s, n);
  if (!line_is_clean(s + 13, n - 13)) return malformed(msg, "a control byte", s, n);
  r->keep_alive = s[7] == '1';
  return 0;
}

int capgate__parse_head(const char *buf, size_t head_len, struct capgate_response *r, struct capgate_text *msg) {
  memset(r, 0, sizeof *r);
  r->retry_after_s = -1;
  if (head_len < 4 || head_len > CAPGATE_HEAD_MAX) return malformed(msg, "a head of a wrong size", NULL, 0);
  const size_t end = head_len - 2; /* the final empty line's CRLF */
  size_t pos = 0;
  int line_no = 0;
  int content_lengths = 0;
  int retry_afters = 0;
  int fields = 0;
  uint64_t content_length = 0;
  while (pos < end) {
    size_t eol = pos;
    while (eol < end && buf[eol] != '\r' && buf[eol] != '\n') eol++;
    /* Every line ends in CRLF: a bare CR or LF, or a line running into the end, is malformed. */
    if (eol + 1 >= head_len || buf[eol] != '\r' || buf[eol + 1] != '\n') return malformed(msg, "a bare CR or LF", buf + pos, eol - pos);
    const char *line = buf + pos;
    size_t n = eol - pos;
    pos = eol + 2;
    if (line_no++ == 0) {
      int rc = parse_status_line(line, n, r, msg);
      if (rc < 0) return rc;
      continue;
    }
    if (n == 0) return malformed(msg, "an empty line inside the head", NULL, 0);
    if (line[0] == ' ' || line[0] == '\t') return malformed(msg, "a folded header line (obs-fold)", line, n);
    if (++fields > CAPGATE_HEADER_FIELDS_MAX) return malformed(msg, "more than 64 header fields", NULL, 0);
    size_t colon = 0;
    while (colon < n && is_tchar((unsigned char)line[colon])) colon++;
    if (colon == 0 || colon == n || line[colon] != ':') return malformed(msg, "a malformed header line", line, n);
    size_t v = colon + 1;
    size_t ve = n;
    while (v < ve && (line[v] == ' ' || line[v] == '\t')) v++;
    while (ve > v && (line[ve - 1] == ' ' || line[ve - 1] == '\t')) ve--;
    if (!line_is_clean(line + v, ve - v)) return malformed(msg, "a control byte in a header value", line, n);
    const char *value = line + v;
    size_t vn = ve - v;
    if (iequals(line, colon, "content-length")) {
      if (++content_lengths > 1) return malformed(msg, "more than one Content-Length", NULL, 0);
      if (vn == 0 || vn > 10) return malformed(msg, "a malformed Content-Length", line, n);
      for (size_t i = 0; i < vn; i++) {
        if (value[i] < '0' || value[i] > '9') return malformed(msg, "a malformed Content-Length", line, n);
        content_length = content_length * 10 + (uint64_t)(value[i] - '0');
      }
    } else if (iequals(line, colon, "transfer-encoding")) {
      return malformed(msg, "a Transfer-Encoding (the daemon never sends one)", line, n);
    } else if (iequals(line, colon, "connection")) {
      if (has_close_token(value, vn)) r->keep_alive = 0;
    } else if (iequals(line, colon, "content-type")) {
      r->json = is_json_type(value, vn);
    } else if (iequals(line, colon, "retry-after")) {
      /* Two of them: follow neither. */
      r->retry_after_s = ++retry_afters == 1 ? parse_retry_after(value, vn) : -1;
    }
  }
  if (line_no == 0) return malformed(msg, "an empty head", NULL, 0);
  if (content_lengths == 0) return malformed(msg, "no Content-Length", NULL, 0);
  if (content_length > CAPGATE_BODY_MAX) {
    capgate__text_set(msg, "capgate's answer announces a body of ");
    capgate__text_u64(msg, content_length);
    capgate__text_str(msg, " bytes; this client accepts at most 32768");
    return -EMSGSIZE;
  }
  r->head_len = head_len;
  r->body_len = (size_t)content_length;
  return 0;
}
