// Structural component-model types, with every type index already resolved. Names of type
// definitions are deliberately absent: the contract is checked by shape (field names, order,
// cases, primitive types), so a component that redefines `request` under the same name with
// different fields does not match.

export const PRIMITIVES = [
  'bool', 's8', 'u8', 's16', 'u16', 's32', 'u32', 's64', 'u64', 'f32', 'f64', 'char', 'string',
] as const;
export type Primitive = (typeof PRIMITIVES)[number];

export type ValType =
  | { kind: 'prim'; prim: Primitive }
  | { kind: 'record'; fields: Array<{ name: string; type: ValType }> }
  | { kind: 'variant'; cases: Array<{ name: string; type: ValType | null }> }
  | { kind: 'list'; element: ValType }
  | { kind: 'tuple'; elements: ValType[] }
  | { kind: 'flags'; names: string[] }
  | { kind: 'enum'; names: string[] }
  | { kind: 'option'; inner: ValType }
  | { kind: 'result'; ok: ValType | null; err: ValType | null }
  /** own/borrow/stream/future/...: never part of this contract; kept only to name it in errors. */
  | { kind: 'unsupported'; what: string };

export interface FuncType {
  params: Array<{ name: string; type: ValType }>;
  /** null: no result. Named multi-results are not part of the contract and stay 'unsupported'. */
  result: ValType | null;
}

/** What an instance (imported or defined) exposes, by export name. */
export type InstanceShape = Map<string, ExternShape>;

export type ExternShape =
  | { sort: 'func'; type: FuncType }
  | { sort: 'type'; type: TypeDef }
  | { sort: 'instance'; exports: InstanceShape }
  | { sort: 'component' }
  | { sort: 'core-module' }
  | { sort: 'value' };

/** One entry of a (component, instance or component-type) type index space. */
export type TypeDef =
  | { kind: 'value'; type: ValType }
  | { kind: 'func'; type: FuncType }
  | { kind: 'instance'; exports: InstanceShape }
  | { kind: 'component' }
  /** Generative resource type (defined, or imported/exported with `sub resource`). */
  | { kind: 'resource' };

export function describeValType(t: ValType | null, depth = 0): string {
  if (t === null) return '_';
  if (depth > 4) return '...';
  const d = (x: ValType | null): string => describeValType(x, depth + 1);
  switch (t.kind) {
    case 'prim':
      return t.prim;
    case 'record':
      return `record { ${t.fields.map((f) => `${f.name}: ${d(f.type)}`).join(', ')} }`;
    case 'variant':
      return `variant { ${t.cases.map((c) => (c.type ? `${c.name}(${d(c.type)})` : c.name)).join(', ')} }`;
    case 'list':
      return `list<${d(t.element)}>`;
    case 'tuple':
      return `tuple<${t.elements.map(d).join(', ')}>`;
    case 'flags':
      return `flags { ${t.names.join(', ')} }`;
    case 'enum':
      return `enum { ${t.names.join(', ')} }`;
    case 'option':
      return `option<${d(t.inner)}>`;
    case 'result':
      return `result<${d(t.ok)}, ${d(t.err)}>`;
    case 'unsupported':
      return t.what;
  }
}

export function describeFuncType(f: FuncType): string {
  const params = f.params.map((p) => `${p.name}: ${describeValType(p.type)}`).join(', ');
  return `func(${params})${f.result ? ` -> ${describeValType(f.result)}` : ''}`;
}
