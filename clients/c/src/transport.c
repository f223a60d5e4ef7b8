/*
 * A Unix stream socket with a deadline. Non-blocking throughout, so that every wait is a
 * poll() bounded by what is left of the call's deadline. Only async-signal-safe calls
 * (POSIX lists socket, connect, getsockopt, send, recv, poll, close, clock_gettime and nanosleep).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int64_t capgate__now_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void capgate__sleep_until(int64_t at_ms) {
  for (;;) {
    int64_t left = at_ms - capgate__now_ms();
    if (left <= 0) return;
    struct timespec ts = {.tv_sec = (time_t)(left / 1000), .tv_nsec = (long)(left % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL); /* EINTR: the loop sleeps what is left */
  }
}

void capgate__close(int fd) {
  /* Linux releases the descriptor even when close() reports EINTR: never retry. */
  if (fd >= 0) (void)close(fd);
}

static void timed_out(struct capgate_text *msg, const char *what) {
  capgate__text_set(msg, "no complete answer from capgate within the timeout (");
  capgate__text_str(msg, what);
  capgate__text_str(msg, "); the daemon may be overloaded or stuck");
}

/** Waits for `events` on fd until the deadline: 0 when ready, -ETIMEDOUT, or -errno. */
static int wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - capgate__now_ms();
    if (left <= 0) return -ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (n > 0) return 0; /* ready, or an error/hangup the next call reports */
    if (n < 0 && errno != EINTR) return -errno;
  }
}

int capgate__connect(const char *path, int64_t deadline, struct capgate_text *msg) {
  struct sockaddr_un addr;
  size_t n = strlen(path);
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (n == 0 || n >= sizeof addr.sun_path) {
    capgate__text_set(msg, "the socket path is empty or longer than 107 bytes");
    return -ENAMETOOLONG;
  }
  memcpy(addr.sun_path, path, n);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    capgate__text_set(msg, "socket(AF_UNIX) failed: ");
    capgate__text_str(msg, capgate__errno_name(e));
    return -e;
  }
  for (;;) {
    if (connect(fd, (const struct sockaddr *)&addr, (socklen_t)sizeof addr) == 0) return fd;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN) {
      /* The daemon's accept queue is full: try again shortly, within the deadline. */
      int64_t left = deadline - capgate__now_ms();
      if (left <= 0) {
        capgate__close(fd);
        timed_out(msg, "its accept queue stayed full");
        return -ETIMEDOUT;
      }
      (void)poll(NULL, 0, left < 5 ? (int)left : 5);
      continue;
    }
    if (e == EINPROGRESS) {
      int w = wait_for(fd, POLLOUT, deadline);
      int so_error = 0;
      socklen_t len = sizeof so_error;
      if (w == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
      if (w == 0 && so_error == 0) return fd;
      capgate__close(fd);
      if (w == -ETIMEDOUT) {
        timed_out(msg, "connecting");
        return -ETIMEDOUT;
      }
      e = w < 0 ? -w : so_error;
    } else {
      capgate__close(fd);
    }
    capgate__text_set(msg, "cannot connect to ");
    capgate__text_str(msg, path);
    capgate__text_str(msg, ": ");
    capgate__text_str(msg, capgate__errno_name(e));
    if (e == ENOENT || e == ECONNREFUSED) capgate__text_str(msg, " (is capgate running, and its request socket mounted at this path?)");
    if (e == EACCES) capgate__text_str(msg, " (the socket's directory or mode does not let this user in)");
    return -e;
  }
}

int capgate__send_all(int fd, const char *buf, size_t len, int64_t deadline, struct capgate_text *msg) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    int e = n < 0 ? errno : EPIPE;
    if (e == EINTR) continue;
    if (e == EAGAIN) {
      int w = wait_for(fd, POLLOUT, deadline);
      if (w == 0) continue;
      if (w == -ETIMEDOUT) timed_out(msg, "sending the request");
      else capgate__text_set(msg, "waiting to send failed");
      return w;
    }
    capgate__text_set(msg, "sending the request failed: ");
    capgate__text_str(msg, capgate__errno_name(e));
    return -e;
  }
  return 0;
}

ssize_t capgate__recv_some(int fd, char *buf, size_t cap, int64_t deadline, struct capgate_text *msg) {
  for (;;) {
    ssize_t n = recv(fd, buf, cap, 0);
    if (n >= 0) return n;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN) {
      int w = wait_for(fd, POLLIN, deadline);
      if (w == 0) continue;
      if (w == -ETIMEDOUT) timed_out(msg, "reading the answer");
      else capgate__text_set(msg, "waiting for the answer failed");
      return w;
    }
    capgate__text_set(msg, "reading the answer failed: ");
    capgate__text_str(msg, capgate__errno_name(e));
    return -e;
  }
}

int capgate__connection_stale(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP, .revents = 0};
  int n;
  do n = poll(&p, 1, 0);
  while (n < 0 && errno == EINTR);
  return n != 0; /* readable (EOF, or bytes nobody asked for), hung up, or poll failed */
}
