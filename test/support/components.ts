// Test helper: real components from hand-written WAT, built the way `capgate build` does it
// (componentEmbed + componentNew against host-api/wit/policy.wit).
import { readFileSync } from 'node:fs';
import binaryen from 'binaryen';
import { componentEmbed, componentNew } from '@bytecodealliance/jco-transpile/wasm-tools';
import { packagePath } from '../../runtime/bootstrap/package-root.ts';

// From the package root, not from this file: benchmarks run this compiled, from dist/.
export const POLICY_WIT_PATH = packagePath('host-api', 'wit', 'policy.wit');
export const POLICY_WIT: string = readFileSync(POLICY_WIT_PATH, 'utf8');

/** Core module bytes from WAT (binaryen's text parser; all features enabled). */
export function coreFromWat(wat: string): Uint8Array {
  const module = binaryen.parseText(wat);
  try {
    module.setFeatures(binaryen.Features.All);
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

export interface ComponentizeOptions {
  /** WIT source; default: the contract. */
  wit?: string;
  world?: string;
  stringEncoding?: 'utf8' | 'utf16' | 'compact-utf16';
}

/** A component from core module bytes. */
export async function componentFromCore(core: Uint8Array, opts: ComponentizeOptions = {}): Promise<Uint8Array> {
  const embedded = await componentEmbed({
    binary: core,
    witSource: opts.wit ?? POLICY_WIT,
    world: opts.world ?? 'policy',
    ...(opts.stringEncoding ? { stringEncoding: opts.stringEncoding } : {}),
  });
  return componentNew(embedded);
}

/** A component from core-module WAT. */
export async function componentFromWat(wat: string, opts: ComponentizeOptions = {}): Promise<Uint8Array> {
  return componentFromCore(coreFromWat(wat), opts);
}

export const HOST_IMPORTS_WAT = `
  (import "capgate:policy/host@1.0.0" "set-memlock" (func $set_memlock (param i32 i64 i32)))
  (import "capgate:policy/host@1.0.0" "query-vm-identity" (func $query_vm_identity (param i32 i32)))
  (import "capgate:policy/host@1.0.0" "log" (func $log (param i32 i32 i32)))`;

/**
 * A core module for the policy world. `evaluateBody` is the body of
 * evaluate(operation i32, requester-pid i32, requester-uid i32, target-pid i32, bytes i64) -> i32
 * (it returns a pointer to the decision: i32 discriminant, then deny's string ptr/len).
 * The default body allows: it returns a pointer to a zeroed return area.
 */
export function policyWat(
  parts: { evaluateBody?: string; extra?: string; memory?: string; hostImports?: boolean } = {},
): string {
  return `(module
  ${parts.hostImports === false ? '' : HOST_IMPORTS_WAT}
  ${parts.memory ?? '(memory (export "memory") 1)'}
  (func (export "evaluate") (param $op i32) (param $rpid i32) (param $ruid i32) (param $tpid i32) (param $bytes i64) (result i32)
    ${parts.evaluateBody ?? '(i32.const 1024)'})
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 2048))
  (func (export "cabi_post_evaluate") (param i32))
  ${parts.extra ?? ''}
)`;
}
