// The errno values capgate looks at, and a name for each (for error messages and the audit).

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EBADF = 9;
export const EWOULDBLOCK = 11;
export const EACCES = 13;
export const EINVAL = 22;
export const ENOSYS = 38;
export const ENOPROTOOPT = 92;
export const EOPNOTSUPP = 95;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [ESRCH]: 'ESRCH',
  [EBADF]: 'EBADF',
  [EWOULDBLOCK]: 'EWOULDBLOCK',
  [EACCES]: 'EACCES',
  [EINVAL]: 'EINVAL',
  [ENOSYS]: 'ENOSYS',
  [ENOPROTOOPT]: 'ENOPROTOOPT',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
};

export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}
