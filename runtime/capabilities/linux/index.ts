// Real Linux capabilities: prlimit through FFI, pidfd-bracketed, scoped to one registered VM.
export { createLinuxCapabilities, type LinuxCapabilitiesOptions } from './capabilities.ts';
export { assertLinuxSupport, LinuxSupportError, type LinuxSupport } from './support.ts';
export { withCallQuota } from './quota.ts';
export { getMemlock, setMemlockRaw, RLIM_INFINITY, type PrlimitResult } from './prlimit.ts';
export { LibcUnavailableError } from './libc.ts';
export { memlockNow, undoSetMemlock, type MemlockUndo, type UndoStatus } from './undo-memlock.ts';
