/* The public API: a client object that keeps its connection, and a one-shot call. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct capgate_client {
  struct capgate_config config;
  int fd;
};

static const char *environment(const char *name) {
#if defined(__GLIBC__)
  return secure_getenv(name); /* not from the environment of a setuid caller */
#else
  return getenv(name);
#endif
}

CAPGATE_API int capgate_client_new(const struct capgate_options *options, struct capgate_client **client) {
  if (client == NULL) return -EINVAL;
  *client = NULL;
  struct capgate_client *c = malloc(sizeof *c);
  if (c == NULL) return -ENOMEM;
  int rc = capgate__config_init(&c->config, options != NULL ? options->socket_path : NULL, environment(CAPGATE_SOCKET_ENV), options != NULL ? options->timeout_ms : 0);
  if (rc < 0) {
    free(c);
    return rc;
  }
  c->fd = -1;
  *client = c;
  return 0;
}

CAPGATE_API int capgate_client_set_memlock(struct capgate_client *client, pid_t pid, uint64_t bytes, struct capgate_decision *out) {
  if (client == NULL || out == NULL) return -EINVAL;
  return capgate__set_memlock(&client->config, &client->fd, 1, pid, bytes, out);
}

CAPGATE_API void capgate_client_free(struct capgate_client *client) {
  if (client == NULL) return;
  capgate__close(client->fd);
  free(client);
}

/* The process-wide configuration of capgate_set_memlock, read once when the library loads. */
static struct capgate_config default_config;
static int default_config_error = -EINVAL;

__attribute__((constructor)) static void capgate_load(void) {
  default_config_error = capgate__config_init(&default_config, NULL, environment(CAPGATE_SOCKET_ENV), 0);
}

CAPGATE_API int capgate_set_memlock(pid_t pid, uint64_t bytes, struct capgate_decision *out) {
  if (out == NULL) return -EINVAL;
  if (default_config_error < 0) {
    struct capgate_text msg;
    capgate__text_init(&msg, out->message, sizeof out->message);
    capgate__text_set(&msg, default_config_error == -ENAMETOOLONG ? "$" CAPGATE_SOCKET_ENV " is longer than 107 bytes" : "the library is not initialised yet (called from an earlier constructor?); use capgate_client_new");
    out->allow = 0;
    out->reason[0] = out->decision_id[0] = out->error_kind[0] = '\0';
    return default_config_error;
  }
  int fd = -1;
  return capgate__set_memlock(&default_config, &fd, 0, pid, bytes, out);
}

CAPGATE_API const char *capgate_strerror(int error) {
  switch (error < 0 ? -error : error) {
    case 0: return "no error";
    case ENOENT: return "no capgate socket at the configured path";
    case ECONNREFUSED: return "nothing listens on the capgate socket";
    case EACCES: return "not allowed to connect to the capgate socket";
    case ETIMEDOUT: return "capgate did not answer within the timeout";
    case ECONNRESET: return "capgate closed the connection without answering";
    case EPROTO: return "capgate's answer is malformed";
    case EMSGSIZE: return "capgate's answer is larger than this client accepts";
    case EAGAIN: return "capgate is overloaded, shutting down, or this VM is rate-limited; retry later";
    case EINVAL: return "invalid argument, or a request capgate refused as malformed";
    case ENAMETOOLONG: return "the socket path is longer than 107 bytes";
    case ENOTSUP: return "capgate does not offer this operation (version mismatch)";
    case EIO: return "capgate failed internally; see its log";
    case ENOMEM: return "out of memory";
    default: return "capgate request failed";
  }
}
