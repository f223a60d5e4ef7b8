// How a failed prlimit(2) reads in the contract's terms: a mapping, no host call, so the engine
// (reading a stopped worker's effect ledger) and the simulator's reach of it stay off capabilities/linux.
import type { CapabilityError } from '../contract/types.ts';
import { EINVAL, EPERM, ESRCH } from '../os/errno.ts';

/** prlimit(2) errors as the contract names them; anything unexpected is `internal`. */
export function capabilityErrorForErrno(errno: number): CapabilityError {
  switch (errno) {
    case EPERM:
      return 'not-permitted';
    case ESRCH:
      return 'no-such-process';
    case EINVAL:
      return 'invalid-argument';
    default:
      return 'internal';
  }
}
