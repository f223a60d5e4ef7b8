// capgate's exit codes: documented in `capgate --help`, relied on by scripts.
export const EXIT = {
  /** Done; allowed; every test passed. */
  ok: 0,
  /** Ran, and the answer was no: denied, a test case failed, a replayed decision changed, the daemon refused. */
  failed: 1,
  /** Bad arguments or bad input files (malformed scenario, not a wasm file): fix the command line. */
  usage: 2,
  /** No daemon at the socket (or no permission to reach it). */
  unreachable: 3,
  /**
   * The daemon cannot do it now and said when to ask again (a 503 or 429 with Retry-After:
   * overloaded, not-ready, compiler-unavailable, vm-rate-limited); nothing was done. EX_TEMPFAIL
   * of sysexits.h (systemd names it TEMPFAIL), so a script or a unit can tell it from a refusal.
   */
  tempfail: 75,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `
Exit codes:
  0  ok (allowed, all tests passed)
  1  denied or failed (a test case failed, a decision would change, the daemon refused)
  2  usage error (bad arguments, malformed scenario or input file)
  3  daemon unreachable (start one with \`capgate serve\`, or pass --socket)
  75 try again later (the daemon answered 503 or 429 with Retry-After: nothing was done; EX_TEMPFAIL)`;
