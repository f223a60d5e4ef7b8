// UTF-16 (AssemblyScript) <-> UTF-8 (the contract) at the boundary.

/** Decodes `len` UTF-8 bytes at `ptr` (guest memory written by the host) into a string. */
export function readUtf8(ptr: usize, len: usize): string {
  return String.UTF8.decodeUnsafe(ptr, len, false);
}

/** A UTF-8 copy of `s` in guest memory; the ArrayBuffer keeps ptr valid until the arena resets. */
export function toUtf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s, false);
}
