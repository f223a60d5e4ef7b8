// The errno values capgate maps onto the contract, and a name for the audit detail.
import type { CapabilityError } from '../../contract/types.ts';

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EBADF = 9;
export const EWOULDBLOCK = 11;
export const EINVAL = 22;
export const ENOSYS = 38;
export const ENOPROTOOPT = 92;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [ESRCH]: 'ESRCH',
  [EBADF]: 'EBADF',
  [EWOULDBLOCK]: 'EWOULDBLOCK',
  [EINVAL]: 'EINVAL',
  [ENOSYS]: 'ENOSYS',
  [ENOPROTOOPT]: 'ENOPROTOOPT',
};

export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}

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
