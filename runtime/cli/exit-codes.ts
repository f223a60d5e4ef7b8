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
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `
Exit codes:
  0  ok (allowed, all tests passed)
  1  denied or failed (a test case failed, a decision would change, the daemon refused)
  2  usage error (bad arguments, malformed scenario or input file)
  3  daemon unreachable (start one with \`capgate serve\`, or pass --socket)`;
