// Structural component-model types, with every type index already resolved. Names of type
// definitions are deliberately absent: the contract is checked by shape (field names, order,
// cases, primitive types), so a component that redefines `request` under the same name with
// different fields does not match.

export const PRIMITIVES = [
  'bool',
  's8',
  'u8',
  's16',
  'u16',
  's32',
  'u32',
  's64',
  'u64',
  'f32',
  'f64',
  'char',
  'string',
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

/** Longest description an error message quotes: a type from the guest may be a DAG that is
 * exponentially large when written out in full. */
export const MAX_DESCRIPTION_CHARS = 1000;

/** Appends to a string until a character budget is spent; then it ends in "..." and ignores the rest. */
class BoundedText {
  text = '';
  full = false;

  constructor(private readonly budget: number) {}

  add(s: string): boolean {
    if (this.full) return false;
    if (this.text.length + s.length > this.budget) {
      this.text = `${this.text}${s.slice(0, Math.max(0, this.budget - this.text.length))}...`;
      this.full = true;
      return false;
    }
    this.text += s;
    return true;
  }

  /** `items` joined by ", ", each written by `write`; stops as soon as the budget is spent. */
  list<T>(items: readonly T[], write: (item: T) => void): void {
    for (let i = 0; i < items.length && !this.full; i++) {
      if (i > 0) this.add(', ');
      write(items[i]!);
    }
  }
}

/** A value type as WIT-like text, at most MAX_DESCRIPTION_CHARS long (then cut with "..."). */
export function describeValType(t: ValType | null, budget = MAX_DESCRIPTION_CHARS): string {
  const out = new BoundedText(budget);
  describeInto(out, t, 0);
  return out.text;
}

function describeInto(out: BoundedText, t: ValType | null, depth: number): void {
  if (out.full) return;
  if (t === null) return void out.add('_');
  if (depth > 4) return void out.add('...');
  const d = (x: ValType | null): void => describeInto(out, x, depth + 1);
  switch (t.kind) {
    case 'prim':
      out.add(t.prim);
      return;
    case 'record':
      out.add('record { ');
      out.list(t.fields, (f) => (out.add(`${f.name}: `), d(f.type)));
      out.add(' }');
      return;
    case 'variant':
      out.add('variant { ');
      out.list(t.cases, (c) => {
        out.add(c.name);
        if (c.type) out.add('('), d(c.type), out.add(')');
      });
      out.add(' }');
      return;
    case 'list':
      out.add('list<');
      d(t.element);
      out.add('>');
      return;
    case 'tuple':
      out.add('tuple<');
      out.list(t.elements, d);
      out.add('>');
      return;
    case 'flags':
    case 'enum':
      out.add(`${t.kind} { `);
      out.list(t.names, (n) => out.add(n));
      out.add(' }');
      return;
    case 'option':
      out.add('option<');
      d(t.inner);
      out.add('>');
      return;
    case 'result':
      out.add('result<');
      d(t.ok);
      out.add(', ');
      d(t.err);
      out.add('>');
      return;
    case 'unsupported':
      out.add(t.what);
      return;
  }
}

export function describeFuncType(f: FuncType): string {
  const out = new BoundedText(MAX_DESCRIPTION_CHARS);
  out.add('func(');
  out.list(f.params, (p) => (out.add(`${p.name}: `), describeInto(out, p.type, 0)));
  out.add(')');
  if (f.result) out.add(' -> '), describeInto(out, f.result, 0);
  return out.text;
}
