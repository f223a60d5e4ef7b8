// The core signatures of the contract (legacy canonical-ABI names), without binaryen: core-abi.ts
// checks an upload against them, the verifier (../verify/) the compile process's output.
export type Core = 'i32' | 'i64';
export interface CoreSig {
  params: Core[];
  results: Core[];
}
const sig = (params: Core[], results: Core[]): CoreSig => ({ params, results });

export const HOST_IMPORT_SIGNATURES: ReadonlyMap<string, CoreSig> = new Map([
  ['set-memlock', sig(['i32', 'i64', 'i32'], [])],
  ['query-vm-identity', sig(['i32', 'i32'], [])],
  ['log', sig(['i32', 'i32', 'i32'], [])],
]);

export const EXPORT_SIGNATURES = {
  evaluate: sig(['i32', 'i32', 'i32', 'i32', 'i64'], ['i32']),
  cabi_realloc: sig(['i32', 'i32', 'i32', 'i32'], ['i32']),
  cabi_post_evaluate: sig(['i32'], []),
} as const;

/** Names the instrumenter adds; a guest exporting anything with this prefix is refused. */
export const RESERVED_EXPORT_PREFIX = '__capgate_';
