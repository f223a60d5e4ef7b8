// Real Linux capabilities: prlimit through FFI (../../os/), pidfd-bracketed, scoped to one registered VM.
export { createLinuxCapabilities, type LinuxCapabilitiesOptions } from './capabilities.ts';
