// Lowers the host imports' results into the guest's return areas.
import { CAPABILITY_ERRORS, type VmIdentity } from '../../contract/types.ts';
import type { SetMemlockResult } from '../../capabilities/capabilities.ts';
import { abiFault } from './guest-fault.ts';
import { utf8Length, type GuestMemory } from './guest-memory.ts';
import { LABEL_TUPLE, SET_MEMLOCK_RESULT, STRING_ALIGN, VM_IDENTITY_OPTION } from './layout.ts';

/** The guest's allocator: cabi_realloc(old_ptr, old_size, align, new_size) -> ptr. */
export type GuestRealloc = (oldPtr: number, oldSize: number, align: number, newSize: number) => number;

export function lowerSetMemlockResult(memory: GuestMemory, retptr: number, result: SetMemlockResult): void {
  memory.check('set-memlock return area', retptr, SET_MEMLOCK_RESULT.size, SET_MEMLOCK_RESULT.align);
  const base = retptr >>> 0;
  if (result.ok) {
    memory.writeU8('set-memlock result', base + SET_MEMLOCK_RESULT.disc, 0);
    return;
  }
  memory.writeU8('set-memlock result', base + SET_MEMLOCK_RESULT.disc, 1);
  memory.writeU8('set-memlock error', base + SET_MEMLOCK_RESULT.error, CAPABILITY_ERRORS.indexOf(result.error));
}

/** Allocates `size` bytes through the guest's allocator and checks what it returned. */
function allocate(memory: GuestMemory, realloc: GuestRealloc, what: string, align: number, size: number): number {
  const ptr = realloc(0, 0, align, size) >>> 0;
  // The allocator is guest code: its answer is as untrusted as any other guest pointer.
  try {
    memory.check(what, ptr, size, align);
  } catch {
    throw abiFault(
      `cabi_realloc returned ${ptr} for ${size} bytes (align ${align}) of ${what}, outside guest memory of ${memory.byteLength} bytes or misaligned`,
    );
  }
  return ptr;
}

function lowerString(memory: GuestMemory, realloc: GuestRealloc, what: string, value: string, at: number): void {
  const length = utf8Length(value);
  const ptr = allocate(memory, realloc, what, STRING_ALIGN, length);
  memory.writeUtf8(what, ptr, value, length);
  memory.writeU32(what, at, ptr);
  memory.writeU32(what, at + 4, length);
}

/** What a label's key or value is called in errors: made once per index, not per call (every
 * speculative run that asks for its VM's identity lowers every label). */
const LABEL_NAMES: Array<{ key: string; value: string }> = [];
function labelNames(i: number): { key: string; value: string } {
  return (LABEL_NAMES[i] ??= { key: `vm-identity.labels[${i}].key`, value: `vm-identity.labels[${i}].value` });
}

export function lowerVmIdentityOption(
  memory: GuestMemory,
  realloc: GuestRealloc | undefined,
  retptr: number,
  identity: VmIdentity | null,
): void {
  memory.check('query-vm-identity return area', retptr, VM_IDENTITY_OPTION.size, VM_IDENTITY_OPTION.align);
  const base = retptr >>> 0;
  if (identity === null) {
    memory.writeU8('option discriminant', base + VM_IDENTITY_OPTION.disc, 0);
    return;
  }
  if (realloc === undefined)
    throw abiFault('query-vm-identity returned a VM but the guest exports no cabi_realloc to receive it');
  memory.writeU8('option discriminant', base + VM_IDENTITY_OPTION.disc, 1);
  lowerString(memory, realloc, 'vm-identity.uuid', identity.uuid, base + VM_IDENTITY_OPTION.uuid);
  lowerString(memory, realloc, 'vm-identity.name', identity.name, base + VM_IDENTITY_OPTION.name);
  memory.writeI32('vm-identity.id', base + VM_IDENTITY_OPTION.id, identity.id);
  const n = identity.labels.length;
  const list = allocate(memory, realloc, 'vm-identity.labels', LABEL_TUPLE.align, n * LABEL_TUPLE.size);
  memory.writeU32('vm-identity.labels', base + VM_IDENTITY_OPTION.labels, list);
  memory.writeU32('vm-identity.labels', base + VM_IDENTITY_OPTION.labels + 4, n);
  for (let i = 0; i < n; i++) {
    const label = identity.labels[i]!;
    const at = list + i * LABEL_TUPLE.size;
    const names = labelNames(i);
    lowerString(memory, realloc, names.key, label[0], at + LABEL_TUPLE.key);
    lowerString(memory, realloc, names.value, label[1], at + LABEL_TUPLE.value);
  }
}
