/*
 * capgate-set-memlock <pid> <bytes|unlimited>: asks capgate to set RLIMIT_MEMLOCK of <pid>.
 * Exit status: 0 allow, 1 deny, 2 usage, 3 no decision (the error is printed).
 *
 *   cc set-memlock.c $(pkg-config --cflags --libs capgate) -o capgate-set-memlock
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capgate.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <pid> <bytes|unlimited>\n", argv[0]);
    return 2;
  }
  char *end;
  long pid = strtol(argv[1], &end, 10);
  if (*end != '\0' || pid <= 0) {
    fprintf(stderr, "not a pid: %s\n", argv[1]);
    return 2;
  }
  uint64_t bytes = CAPGATE_UNLIMITED;
  if (strcmp(argv[2], "unlimited") != 0) {
    errno = 0;
    bytes = strtoull(argv[2], &end, 10);
    if (errno != 0 || *end != '\0' || end == argv[2]) {
      fprintf(stderr, "not a byte count: %s\n", argv[2]);
      return 2;
    }
  }
  struct capgate_decision d;
  int rc = capgate_set_memlock((pid_t)pid, bytes, &d);
  if (rc < 0) {
    fprintf(stderr, "capgate: %s: %s\n", capgate_strerror(rc), d.message);
    return 3;
  }
  if (d.allow) printf("allow (decision %s)\n", d.decision_id);
  else printf("deny: %s%s%s (decision %s)\n", d.reason, d.error_kind[0] ? ", " : "", d.error_kind, d.decision_id);
  return d.allow ? 0 : 1;
}
