/*
 * capgate.h - C client for capgate's request socket.
 *
 * Asks the capgate daemon for a privileged operation (today: raising RLIMIT_MEMLOCK of a
 * process in the caller's own VM) over HTTP/1.1 on a Unix socket. libc only; no allocation
 * on the request path; every call has a deadline.
 *
 * Return values: 0 when the daemon decided (allow or deny: see out->allow), or a negative
 * errno when it did not, with a sentence in out->message that says what went wrong:
 *   -ENOENT, -ECONNREFUSED, -EACCES  no daemon listens on the socket, or it is not reachable
 *   -ETIMEDOUT                       no complete answer within the timeout
 *   -ECONNRESET                      the daemon closed the connection without answering
 *   -EPROTO                          the answer is not the HTTP/JSON the daemon sends (a
 *                                    malformed, truncated or unexpected answer)
 *   -EMSGSIZE                        the answer (or a field of it) is larger than this client accepts
 *   -EAGAIN                          the daemon is overloaded or shutting down, or this VM has
 *                                    used its share while others ask (429), and the wait it
 *                                    asked for (Retry-After) does not fit in the timeout
 *   -EINVAL                          a bad argument, or the daemon refused the request as malformed
 *   -ENOTSUP                         the daemon does not know this operation (version mismatch)
 *   -EIO                             the daemon failed internally (see its log)
 * A decision of deny is not an error: the call returns 0 and out->allow is 0.
 *
 * A refusal that says when to ask again (429 or 503 with Retry-After, in seconds) is asked
 * again after that wait, as long as the wait ends before the call's deadline: a short timeout
 * means no retry. set-memlock is idempotent, and a refused request was never evaluated.
 */
#ifndef CAPGATE_H
#define CAPGATE_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CAPGATE_VERSION "1.0.0"

/** Where the daemon's request socket is, unless configured otherwise. */
#define CAPGATE_DEFAULT_SOCKET "/run/capgate/request.sock"
/** Environment variable that overrides the default socket path; read once, at initialisation. */
#define CAPGATE_SOCKET_ENV "CAPGATE_REQUEST_SOCKET"
/** Whole round trip (connect, send, answer) of one call, in milliseconds. */
#define CAPGATE_DEFAULT_TIMEOUT_MS 5000
#define CAPGATE_MAX_TIMEOUT_MS 600000

/** `bytes` meaning "no limit" (RLIM_INFINITY). */
#define CAPGATE_UNLIMITED UINT64_MAX

/** A deny reason fits the daemon's default limit on policy strings (4096 bytes) plus NUL. */
#define CAPGATE_REASON_MAX 4097
#define CAPGATE_ID_MAX 64
#define CAPGATE_KIND_MAX 64
#define CAPGATE_MESSAGE_MAX 512

struct capgate_decision {
  /** 1: allow, 0: deny. Meaningful when the call returned 0. */
  int allow;
  /** The policy's deny reason, or the failure's kind; empty for allow. */
  char reason[CAPGATE_REASON_MAX];
  /** The audit record of this decision (`capgate audit show <id>`). */
  char decision_id[CAPGATE_ID_MAX];
  /** Machine-readable kind of a failure-deny (e.g. "no-policy", "timeout"); empty otherwise. */
  char error_kind[CAPGATE_KIND_MAX];
  /** When the call returned < 0: what went wrong and what to do. Empty otherwise. */
  char message[CAPGATE_MESSAGE_MAX];
};

struct capgate_options {
  /** NULL: $CAPGATE_REQUEST_SOCKET if set, else CAPGATE_DEFAULT_SOCKET. At most 107 bytes. */
  const char *socket_path;
  /** 0: CAPGATE_DEFAULT_TIMEOUT_MS. */
  int timeout_ms;
};

/**
 * A client that keeps its connection open between calls (and reconnects, once, when the
 * daemon closed it in between). Not thread-safe: use one per thread.
 */
struct capgate_client;

/** Creates a client; NULL options means defaults. Returns 0, -EINVAL, -ENAMETOOLONG or -ENOMEM. */
int capgate_client_new(const struct capgate_options *options, struct capgate_client **client);

/**
 * Asks the daemon to set soft and hard RLIMIT_MEMLOCK of `pid` to `bytes`. Who asks is read
 * by the daemon from the kernel; the pid is interpreted in the daemon's pid namespace.
 */
int capgate_client_set_memlock(struct capgate_client *client, pid_t pid, uint64_t bytes, struct capgate_decision *out);

/** Closes the connection and frees the client. NULL is a no-op. */
void capgate_client_free(struct capgate_client *client);

/**
 * The same, without a client object: one connection per call, configured when the library
 * was loaded ($CAPGATE_REQUEST_SOCKET, default timeout). Thread-safe and async-signal-safe.
 */
int capgate_set_memlock(pid_t pid, uint64_t bytes, struct capgate_decision *out);

/** A short text for a negative errno this library returns (never NULL). */
const char *capgate_strerror(int error);

#ifdef __cplusplus
}
#endif

#endif /* CAPGATE_H */
