// Real Linux capabilities: prlimit through FFI (../../os/), pidfd-bracketed, scoped to one registered VM.
export { createLinuxCapabilities, type LinuxCapabilitiesOptions } from './capabilities.ts';
export { memlockNow, undoSetMemlock, type MemlockUndo, type UndoStatus } from './undo-memlock.ts';
