/*
 * A strict JSON reader for the two bodies the request socket sends: a decision and an error.
 * RFC 8259 grammar, well-formed UTF-8 only, no NUL in strings, nesting at most 32 deep,
 * known fields at most once, unknown fields skipped (the daemon may add some), strings copied
 * into fixed buffers (a value that does not fit is an error, not a silent cut).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define MAX_DEPTH 32

struct json {
  const char *start;
  const char *p;
  const char *end;
  struct capgate_text *msg;
};

static int bad(struct json *j, const char *what) {
  capgate__text_set(j->msg, "capgate's answer is not the JSON it sends: ");
  capgate__text_str(j->msg, what);
  capgate__text_str(j->msg, " at byte ");
  capgate__text_u64(j->msg, (uint64_t)(j->p - j->start));
  return -EPROTO;
}

static void skip_ws(struct json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int peek(struct json *j) {
  return j->p < j->end ? (unsigned char)*j->p : -1;
}

/** Where a decoded string goes; with buf == NULL it is only checked. */
struct sink {
  char *buf;
  size_t cap;
  size_t len;
  int overflow;
};

static void emit(struct sink *s, const char *bytes, size_t n) {
  if (s->buf == NULL) return;
  if (s->overflow || s->len + n >= s->cap) {
    s->overflow = 1;
    return;
  }
  memcpy(s->buf + s->len, bytes, n);
  s->len += n;
  s->buf[s->len] = '\0';
}

static int hex4(struct json *j, unsigned *out) {
  if (j->end - j->p < 4) return bad(j, "a truncated \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = (unsigned char)j->p[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return bad(j, "a malformed \\u escape");
    v = v * 16 + d;
  }
  j->p += 4;
  *out = v;
  return 0;
}

static void emit_code_point(struct sink *s, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xc0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xe0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    b[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    b[0] = (char)(0xf0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    b[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  emit(s, b, n);
}

/** Length of the well-formed UTF-8 sequence at p (first byte >= 0x80), or 0 (RFC 3629 table). */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end) {
  unsigned char c = p[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c == 0xe0) n = 3, lo = 0xa0;
  else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) n = 3;
  else if (c == 0xed) n = 3, hi = 0x9f; /* no UTF-16 surrogates */
  else if (c == 0xf0) n = 4, lo = 0x90;
  else if (c >= 0xf1 && c <= 0xf3) n = 4;
  else if (c == 0xf4) n = 4, hi = 0x8f; /* nothing above U+10FFFF */
  else return 0;
  if ((size_t)(end - p) < n) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++) {
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  }
  return n;
}

/** A string at j->p (its opening quote). */
static int string(struct json *j, struct sink *s) {
  if (peek(j) != '"') return bad(j, "a string was expected");
  j->p++;
  for (;;) {
    if (j->p >= j->end) return bad(j, "an unterminated string");
    unsigned char c = (unsigned char)*j->p;
    if (c == '"') {
      j->p++;
      return 0;
    }
    if (c < 0x20) return bad(j, "a control byte inside a string");
    if (c >= 0x80) {
      size_t n = utf8_sequence((const unsigned char *)j->p, (const unsigned char *)j->end);
      if (n == 0) return bad(j, "malformed UTF-8");
      emit(s, j->p, n);
      j->p += n;
      continue;
    }
    if (c != '\\') {
      emit(s, j->p, 1);
      j->p++;
      continue;
    }
    j->p++;
    if (j->p >= j->end) return bad(j, "an unterminated escape");
    char e = *j->p++;
    char plain;
    switch (e) {
      case '"': plain = '"'; break;
      case '\\': plain = '\\'; break;
      case '/': plain = '/'; break;
      case 'b': plain = '\b'; break;
      case 'f': plain = '\f'; break;
      case 'n': plain = '\n'; break;
      case 'r': plain = '\r'; break;
      case 't': plain = '\t'; break;
      case 'u': {
        unsigned cp;
        int rc = hex4(j, &cp);
        if (rc < 0) return rc;
        if (cp >= 0xdc00 && cp <= 0xdfff) return bad(j, "a lone low surrogate");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          unsigned low;
          if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') return bad(j, "a lone high surrogate");
          j->p += 2;
          rc = hex4(j, &low);
          if (rc < 0) return rc;
          if (low < 0xdc00 || low > 0xdfff) return bad(j, "a high surrogate without its low half");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        if (cp == 0) return bad(j, "a NUL (\\u0000) inside a string");
        emit_code_point(s, cp);
        continue;
      }
      default: return bad(j, "an unknown escape");
    }
    emit(s, &plain, 1);
  }
}

static int digits(struct json *j) {
  const char *start = j->p;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  return j->p > start;
}

static int number(struct json *j) {
  if (peek(j) == '-') j->p++;
  if (peek(j) == '0') j->p++;
  else if (!(peek(j) >= '1' && peek(j) <= '9') || !digits(j)) return bad(j, "a malformed number");
  if (peek(j) == '.') {
    j->p++;
    if (!digits(j)) return bad(j, "a malformed number");
  }
  if (peek(j) == 'e' || peek(j) == 'E') {
    j->p++;
    if (peek(j) == '+' || peek(j) == '-') j->p++;
    if (!digits(j)) return bad(j, "a malformed number");
  }
  return 0;
}

static int literal(struct json *j, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return bad(j, "an unknown literal");
  j->p += n;
  return 0;
}

static int skip_value(struct json *j, int depth);

/** Calls on_member for each "key": value of the object at j->p; known keys consume their value. */
typedef int (*member_fn)(struct json *j, const char *key, int key_overflow, void *ctx);

static int object(struct json *j, int depth, member_fn on_member, void *ctx) {
  if (depth > MAX_DEPTH) return bad(j, "nesting deeper than 32");
  if (peek(j) != '{') return bad(j, "an object was expected");
  j->p++;
  skip_ws(j);
  if (peek(j) == '}') {
    j->p++;
    return 0;
  }
  for (;;) {
    skip_ws(j);
    char key[32];
    struct sink k = {key, sizeof key, 0, 0};
    key[0] = '\0';
    int rc = string(j, &k);
    if (rc < 0) return rc;
    skip_ws(j);
    if (peek(j) != ':') return bad(j, "':' was expected after a key");
    j->p++;
    skip_ws(j);
    rc = on_member != NULL ? on_member(j, key, k.overflow, ctx) : skip_value(j, depth + 1);
    if (rc < 0) return rc;
    skip_ws(j);
    if (peek(j) == ',') {
      j->p++;
      continue;
    }
    if (peek(j) == '}') {
      j->p++;
      return 0;
    }
    return bad(j, "',' or '}' was expected");
  }
}

static int skip_value(struct json *j, int depth) {
  if (depth > MAX_DEPTH) return bad(j, "nesting deeper than 32");
  skip_ws(j);
  int c = peek(j);
  if (c == '"') {
    struct sink none = {NULL, 0, 0, 0};
    return string(j, &none);
  }
  if (c == '{') return object(j, depth, NULL, NULL);
  if (c == '[') {
    j->p++;
    skip_ws(j);
    if (peek(j) == ']') {
      j->p++;
      return 0;
    }
    for (;;) {
      int rc = skip_value(j, depth + 1);
      if (rc < 0) return rc;
      skip_ws(j);
      if (peek(j) == ',') {
        j->p++;
        continue;
      }
      if (peek(j) == ']') {
        j->p++;
        return 0;
      }
      return bad(j, "',' or ']' was expected");
    }
  }
  if (c == 't') return literal(j, "true");
  if (c == 'f') return literal(j, "false");
  if (c == 'n') return literal(j, "null");
  if (c == '-' || (c >= '0' && c <= '9')) return number(j);
  return bad(j, c < 0 ? "a truncated body" : "a value was expected");
}

/** The whole body is one object followed only by whitespace. */
static int document(struct json *j, member_fn on_member, void *ctx) {
  skip_ws(j);
  int rc = object(j, 1, on_member, ctx);
  if (rc < 0) return rc;
  skip_ws(j);
  return j->p == j->end ? 0 : bad(j, "bytes after the JSON value");
}

static int bad_field(struct json *j, const char *what, const char *name) {
  bad(j, what);
  capgate__text_str(j->msg, " (field ");
  capgate__text_str(j->msg, name);
  capgate__text_str(j->msg, ")");
  return -EPROTO;
}

/** A known string field: decoded into buf, once, whole. */
static int field(struct json *j, const char *name, unsigned bit, unsigned *seen, char *buf, size_t cap) {
  if (*seen & bit) return bad_field(j, "a repeated field", name);
  *seen |= bit;
  if (peek(j) != '"') return bad_field(j, "a value that must be a string is not", name);
  struct sink s = {buf, cap, 0, 0};
  buf[0] = '\0';
  int rc = string(j, &s);
  if (rc < 0) return rc;
  if (s.overflow) {
    capgate__text_set(j->msg, "capgate's answer has a field ");
    capgate__text_str(j->msg, name);
    capgate__text_str(j->msg, " longer than ");
    capgate__text_u64(j->msg, (uint64_t)(cap - 1));
    capgate__text_str(j->msg, " bytes");
    return -EMSGSIZE;
  }
  return 0;
}

enum { F_DECISION = 1, F_REASON = 2, F_ID = 4, F_KIND = 8 };

struct decision_ctx {
  struct capgate_decision *out;
  unsigned seen;
  char verdict[8];
};

static int decision_member(struct json *j, const char *key, int key_overflow, void *ctx) {
  struct decision_ctx *d = ctx;
  if (!key_overflow) {
    if (strcmp(key, "decision") == 0) return field(j, key, F_DECISION, &d->seen, d->verdict, sizeof d->verdict);
    if (strcmp(key, "reason") == 0) return field(j, key, F_REASON, &d->seen, d->out->reason, sizeof d->out->reason);
    if (strcmp(key, "decisionId") == 0) return field(j, key, F_ID, &d->seen, d->out->decision_id, sizeof d->out->decision_id);
    if (strcmp(key, "errorKind") == 0) return field(j, key, F_KIND, &d->seen, d->out->error_kind, sizeof d->out->error_kind);
  }
  return skip_value(j, 2);
}

int capgate__parse_decision(const char *body, size_t len, struct capgate_decision *out, struct capgate_text *msg) {
  struct json j = {body, body, body + len, msg};
  struct decision_ctx d = {out, 0, {0}};
  int rc = document(&j, decision_member, &d);
  if (rc < 0) return rc;
  const char *missing = !(d.seen & F_DECISION) ? "decision" : !(d.seen & F_REASON) ? "reason" : !(d.seen & F_ID) ? "decisionId" : NULL;
  if (missing != NULL) {
    capgate__text_set(msg, "capgate's answer has no field ");
    capgate__text_str(msg, missing);
    return -EPROTO;
  }
  if (strcmp(d.verdict, "allow") == 0) out->allow = 1;
  else if (strcmp(d.verdict, "deny") == 0) out->allow = 0;
  else {
    capgate__text_set(msg, "capgate's answer has a decision that is neither allow nor deny");
    return -EPROTO;
  }
  if (out->decision_id[0] == '\0') {
    capgate__text_set(msg, "capgate's answer has an empty decisionId");
    return -EPROTO;
  }
  return 0;
}

enum { E_CODE = 1, E_MESSAGE = 2, E_HINT = 4, E_ERROR = 8 };

struct error_ctx {
  char *code;
  size_t code_cap;
  unsigned seen;
  char message[200];
  char hint[200];
  int message_cut;
  int hint_cut;
};

/** Human text: cut to fit rather than refused. */
static int text_field(struct json *j, unsigned bit, unsigned *seen, char *buf, size_t cap, int *cut) {
  if (*seen & bit) return bad(j, "a repeated field in the error");
  *seen |= bit;
  if (peek(j) != '"') return bad(j, "an error field that must be a string is not");
  struct sink s = {buf, cap, 0, 0};
  buf[0] = '\0';
  int rc = string(j, &s);
  *cut = s.overflow;
  return rc;
}

static int error_inner_member(struct json *j, const char *key, int key_overflow, void *ctx) {
  struct error_ctx *e = ctx;
  if (!key_overflow) {
    if (strcmp(key, "code") == 0) return field(j, "error.code", E_CODE, &e->seen, e->code, e->code_cap);
    if (strcmp(key, "message") == 0) return text_field(j, E_MESSAGE, &e->seen, e->message, sizeof e->message, &e->message_cut);
    if (strcmp(key, "hint") == 0) return text_field(j, E_HINT, &e->seen, e->hint, sizeof e->hint, &e->hint_cut);
  }
  return skip_value(j, 3);
}

static int error_member(struct json *j, const char *key, int key_overflow, void *ctx) {
  struct error_ctx *e = ctx;
  if (!key_overflow && strcmp(key, "error") == 0) {
    if (e->seen & E_ERROR) return bad(j, "a repeated field error");
    e->seen |= E_ERROR;
    return object(j, 2, error_inner_member, e);
  }
  return skip_value(j, 2);
}

int capgate__parse_error(const char *body, size_t len, char *code, size_t code_cap, struct capgate_text *msg) {
  struct json j = {body, body, body + len, msg};
  struct error_ctx e;
  memset(&e, 0, sizeof e);
  e.code = code;
  e.code_cap = code_cap;
  code[0] = '\0';
  int rc = document(&j, error_member, &e);
  if (rc < 0) return rc;
  if ((e.seen & (E_ERROR | E_CODE | E_MESSAGE)) != (E_ERROR | E_CODE | E_MESSAGE)) {
    capgate__text_set(msg, "capgate's error answer has no error.code or error.message");
    return -EPROTO;
  }
  capgate__text_str(msg, e.message);
  if (e.message_cut) capgate__text_str(msg, "...");
  if (e.seen & E_HINT) {
    capgate__text_str(msg, " (");
    capgate__text_str(msg, e.hint);
    if (e.hint_cut) capgate__text_str(msg, "...");
    capgate__text_str(msg, ")");
  }
  return 0;
}
