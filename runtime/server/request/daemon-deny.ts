// The denies the daemon decides before any policy runs (unknown requester, nothing bound,
// deadline), built by the engine's denyOutcome with the daemon's kinds. Shared by the request
// pipeline and the simulator, so a scenario sees exactly what a client would.
import type { ErrorKind, Outcome } from '../../engine/outcome.ts';
import type { DaemonDenyKind } from '../../wire/index.ts';

/** An engine Outcome, or a deny the daemon decided itself. */
export type Decided = Omit<Outcome, 'errorKind'> & { errorKind?: ErrorKind | DaemonDenyKind };

/** The details the daemon writes for its own denies (the simulator reuses them). */
export const DAEMON_DENY_DETAIL = {
  notInVm: (pid: number): string => `pid ${pid} is in no registered VM`,
  exited: (pid: number): string => `the process that connected (pid ${pid}) has exited`,
  nothingBound: (operation: string): string => `no policy is bound to ${operation}`,
} as const;
