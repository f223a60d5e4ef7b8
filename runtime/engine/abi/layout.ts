// Canonical-ABI memory layout of the capgate:policy@1.0.0 world (32-bit memory, UTF-8 strings),
// derived from CanonicalABI.md (elem_size/alignment/flatten) and checked against jco's glue:
//   decision          = variant { allow, deny(string) }: u8 disc @0, string (ptr,len) @4; size 12, align 4
//   result<_, cap-err> = u8 disc @0, u8 enum @1; size 2, align 1
//   option<vm-identity> = u8 disc @0, record @4: uuid @4, name @12, id s32 @20, labels (ptr,len) @24;
//                        size 32, align 4
//   tuple<string,string> = key (ptr,len) @0, value (ptr,len) @8; size 16, align 4
// `evaluate`'s result flattens to 3 values (> MAX_FLAT_RESULTS = 1), so it returns a pointer; the
// imports' results likewise go through a caller-provided return pointer.

export const DECISION = { size: 12, align: 4, disc: 0, reasonPtr: 4, reasonLen: 8 } as const;
export const DECISION_ALLOW = 0;
export const DECISION_DENY = 1;

export const SET_MEMLOCK_RESULT = { size: 2, align: 1, disc: 0, error: 1 } as const;

export const VM_IDENTITY_OPTION = {
  size: 32,
  align: 4,
  disc: 0,
  uuid: 4,
  name: 12,
  id: 20,
  labels: 24,
} as const;

export const LABEL_TUPLE = { size: 16, align: 4, key: 0, value: 8 } as const;

/** UTF-8 strings are byte arrays: alignment 1. */
export const STRING_ALIGN = 1;
