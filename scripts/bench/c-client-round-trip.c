/*
 * The C client's round trip, for `npm run bench -- daemon`:
 *   c-client-round-trip <socket> <pid> <bytes> <n> <warmup> [--oneshot]
 * prints <n> per-call times in microseconds, one per line, after <warmup> untimed calls: on one
 * kept connection (capgate_client_set_memlock), or with --oneshot a new connection per call
 * (capgate_set_memlock, socket from $CAPGATE_REQUEST_SOCKET). Any call that is not an allow
 * is reported on stderr and fails the run.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capgate.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s <socket> <pid> <bytes> <n> <warmup> [--oneshot]\n", argv[0]);
    return 2;
  }
  pid_t pid = (pid_t)atoi(argv[2]);
  uint64_t bytes = strtoull(argv[3], NULL, 10);
  int n = atoi(argv[4]);
  int warmup = atoi(argv[5]);
  int oneshot = argc > 6 && strcmp(argv[6], "--oneshot") == 0;
  struct capgate_options options = {argv[1], 10000};
  struct capgate_client *client = NULL;
  if (!oneshot && capgate_client_new(&options, &client) < 0) return 3;
  double *samples = malloc(sizeof *samples * (size_t)n);
  struct capgate_decision d;
  for (int i = 0; i < warmup + n; i++) {
    double t0 = now_us();
    int rc = oneshot ? capgate_set_memlock(pid, bytes, &d) : capgate_client_set_memlock(client, pid, bytes, &d);
    double t1 = now_us();
    if (rc < 0 || !d.allow) {
      fprintf(stderr, "call %d: rc %d (%s) %s %s\n", i, rc, capgate_strerror(rc), d.message, d.reason);
      return 1;
    }
    if (i >= warmup) samples[i - warmup] = t1 - t0;
  }
  for (int i = 0; i < n; i++) printf("%.1f\n", samples[i]);
  free(samples);
  capgate_client_free(client);
  return 0;
}
