// capgate policy SDK for AssemblyScript: what a policy author imports.
// The canonical-ABI exports live in ./abi (re-export them with `export * from ".../abi"`).
export { Operation, Request, Label, VmIdentity, CapabilityError, capabilityErrorName, LogLevel, MEMLOCK_UNLIMITED } from "./types";
export { Decision, allow, deny } from "./decision";
export { setMemlock, queryVmIdentity, log } from "./host";
export { policy, DecideFn } from "./policy";
export { Quantity, parseQuantity, formatBytes } from "./quantity";
