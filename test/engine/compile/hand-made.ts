// Hand-written component WAT for hostile shapes that componentEmbed/componentNew refuse to
// produce (a core module importing env.*, a core evaluate with the wrong signature, extra
// component imports). Assembled with wasm-tools' `parse` (no validation beyond syntax), which
// is exactly the point: the engine must not rely on the uploader's toolchain having checked.
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';

const TYPES_INSTANCE = `
  (type $types-ty (instance
    (type (;0;) (enum "set-memlock"))
    (export (;1;) "operation" (type (eq 0)))
    (type (;2;) (record (field "operation" 1) (field "requester-pid" u32) (field "requester-uid" u32) (field "target-pid" u32) (field "bytes" u64)))
    (export (;3;) "request" (type (eq 2)))
    (type (;4;) (variant (case "allow") (case "deny" string)))
    (export (;5;) "decision" (type (eq 4)))
  ))
  (import "capgate:policy/types@1.0.0" (instance $types (type $types-ty)))
  (alias export $types "request" (type $request))
  (alias export $types "decision" (type $decision))`;

export interface HandMadeParts {
  /** Extra top-level component items (imports, types) placed after the types import. */
  componentImports?: string;
  /** Body of the main core module. Must export memory and evaluate. */
  coreModule: string;
  /** Core instances the main module is instantiated with: `(with "env" (instance $env))` etc. */
  coreWith?: string;
  /** Core items defined before the main instance (e.g. a provider module and its instance). */
  coreBefore?: string;
  /** Canonical options for the lift of evaluate. */
  liftOptions?: string;
  /** Component items defining `$evaluate-ty` (default: the contract's func(req: request) -> decision). */
  evaluateType?: string;
  /** Type ascription on the evaluate export, e.g. `(func (type $evaluate-ty))`. */
  exportAscription?: string;
}

export function handMadeWat(p: HandMadeParts): string {
  return `(component
  ${TYPES_INSTANCE}
  ${p.componentImports ?? ''}
  ${p.coreBefore ?? ''}
  (core module $main ${p.coreModule})
  (core instance $main (instantiate $main ${p.coreWith ?? ''}))
  (alias core export $main "memory" (core memory $memory))
  (alias core export $main "evaluate" (core func $core-evaluate))
  ${p.evaluateType ?? '(type $evaluate-ty (func (param "req" $request) (result $decision)))'}
  (func $evaluate (type $evaluate-ty) (canon lift (core func $core-evaluate) (memory $memory) ${p.liftOptions ?? 'string-encoding=utf8'}))
  (export "evaluate" (func $evaluate) ${p.exportAscription ?? ''})
)`;
}

export const CORE_OK = `
  (memory (export "memory") 1)
  (func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) (i32.const 1024))`;

export async function handMade(p: HandMadeParts): Promise<Uint8Array> {
  return parse(handMadeWat(p));
}
