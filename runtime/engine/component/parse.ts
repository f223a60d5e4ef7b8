// Reads a component binary (layer 1, version 0x0d) far enough to know, with every type index
// resolved: its top-level imports and exports, the core modules it carries, and the canonical
// options of its lifts and lowers. Anything this reader does not understand is rejected
// (fail closed): nested components, component start/values, resource and async built-ins,
// core type definitions and unknown opcodes all raise MalformedBinary / UnsupportedComponent.
//
// Reference: WebAssembly/component-model design/mvp/Binary.md.
import { ByteReader, MalformedBinary } from './byte-reader.ts';
import { matchFuncType } from './match.ts';
import { PRIMITIVES } from './types.ts';
import type { ExternShape, FuncType, InstanceShape, TypeDef, ValType } from './types.ts';
import { quoteName } from './quote.ts';

/** A construct that is well-formed but outside what a capgate policy may contain. */
export class UnsupportedComponent extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedComponent';
  }
}

export type StringEncoding = 'utf8' | 'utf16' | 'latin1+utf16';

export interface CanonUse {
  kind: 'lift' | 'lower';
  stringEncoding: StringEncoding;
  /** For lifts: the component function index it defines. For lowers: the lowered function. */
  func: number;
}

export interface ComponentEntry {
  name: string;
  extern: ExternShape;
}

export interface ComponentSummary {
  imports: ComponentEntry[];
  exports: ComponentEntry[];
  /** Core modules (section 1), in index order. */
  coreModules: Uint8Array[];
  canons: CanonUse[];
  /** Core module whose `evaluate` export the exported `evaluate` lifts, when traceable. */
  evaluateModule: number | null;
}

const MAX_SCOPE_DEPTH = 16;

interface TypeScope {
  types: TypeDef[];
  parent: TypeScope | null;
  depth: number;
}

type CoreInstance = { kind: 'instantiate'; module: number } | { kind: 'exports' };
type CoreFunc = { kind: 'export'; instance: number; name: string } | { kind: 'other' };
type Sort =
  | 'core-func'
  | 'core-table'
  | 'core-memory'
  | 'core-global'
  | 'core-type'
  | 'core-module'
  | 'core-instance'
  | 'func'
  | 'value'
  | 'type'
  | 'component'
  | 'instance';

const CORE_SORTS: Record<number, Sort> = {
  0x00: 'core-func',
  0x01: 'core-table',
  0x02: 'core-memory',
  0x03: 'core-global',
  0x10: 'core-type',
  0x11: 'core-module',
  0x12: 'core-instance',
};
const SORTS: Record<number, Sort> = { 0x01: 'func', 0x02: 'value', 0x03: 'type', 0x04: 'component', 0x05: 'instance' };

const PRIM_BY_OPCODE = new Map<number, ValType>(
  PRIMITIVES.map((prim, i) => [0x7f - i, { kind: 'prim', prim }] as [number, ValType]),
);

export const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00] as const;

/** Bounds on the value types a component may define (EngineLimits.maxTypeDepth, maxTypeWidth). */
export interface TypeLimits {
  maxTypeDepth: number;
  maxTypeWidth: number;
}

const NO_TYPE_LIMITS: TypeLimits = { maxTypeDepth: Infinity, maxTypeWidth: Infinity };

export function parseComponent(bytes: Uint8Array, typeLimits: TypeLimits = NO_TYPE_LIMITS): ComponentSummary {
  return new ComponentParser(bytes, typeLimits).parse();
}

class ComponentParser {
  private readonly r: ByteReader;
  private readonly top: TypeScope = { types: [], parent: null, depth: 0 };
  private readonly funcs: FuncType[] = [];
  private readonly instances: InstanceShape[] = [];
  private readonly coreInstances: CoreInstance[] = [];
  private readonly coreFuncs: CoreFunc[] = [];
  private readonly coreCounts = { table: 0, memory: 0, global: 0, type: 0 };
  private componentCount = 0;
  private readonly out: ComponentSummary = {
    imports: [],
    exports: [],
    coreModules: [],
    canons: [],
    evaluateModule: null,
  };
  private readonly liftedCoreFunc = new Map<number, number>();
  private readonly exportedFuncs = new Map<string, number>();

  /** Nesting depth of each composite value type defined so far (primitives are 1). Types are
   * shared by reference, so a few bytes can describe a tree exponentially large: the limits are
   * checked per definition, on these numbers, never by walking the tree. */
  private readonly depths = new WeakMap<ValType, number>();

  constructor(
    bytes: Uint8Array,
    private readonly typeLimits: TypeLimits,
  ) {
    this.r = new ByteReader(bytes);
  }

  parse(): ComponentSummary {
    const r = this.r;
    for (const b of COMPONENT_PREAMBLE) if (r.byte() !== b) r.fail('not a component preamble');
    while (!r.done) {
      const id = r.byte();
      const size = r.u32();
      const s = r.sub(size);
      this.section(id, s);
      if (!s.done) s.fail(`section ${id} has ${s.end - s.pos} trailing bytes`);
    }
    this.traceEvaluate();
    return this.out;
  }

  private section(id: number, s: ByteReader): void {
    switch (id) {
      case 0: // custom: names, producers, ... — no semantics
        s.pos = s.end;
        return;
      case 1:
        this.out.coreModules.push(s.take(s.end - s.pos));
        return;
      case 2:
        s.vec('core instance', () => this.coreInstance(s));
        return;
      case 3:
        throw new UnsupportedComponent('component-level core type definitions are not supported in a policy');
      case 4:
        throw new UnsupportedComponent('nested components are not supported in a policy');
      case 5:
        s.vec('instance', () => this.instance(s));
        return;
      case 6:
        s.vec('alias', () => this.alias(s));
        return;
      case 7:
        s.vec('type', () => this.top.types.push(this.defType(s, this.top)));
        return;
      case 8:
        s.vec('canon', () => this.canon(s));
        return;
      case 9:
        throw new UnsupportedComponent('component start functions are not supported in a policy');
      case 10:
        s.vec('import', () => this.import(s));
        return;
      case 11:
        s.vec('export', () => this.export(s));
        return;
      case 12:
        throw new UnsupportedComponent('component value definitions are not supported in a policy');
      default:
        s.fail(`unknown component section id ${id}`);
    }
  }

  private sort(r: ByteReader): Sort {
    const b = r.byte();
    if (b === 0x00) {
      const c = r.byte();
      return CORE_SORTS[c] ?? r.fail(`unknown core sort 0x${c.toString(16)}`);
    }
    return SORTS[b] ?? r.fail(`unknown sort 0x${b.toString(16)}`);
  }

  private at<T>(space: T[], idx: number, what: string, r: ByteReader): T {
    const v = space[idx];
    if (v === undefined) r.fail(`${what} index ${idx} out of range (have ${space.length})`);
    return v;
  }

  private coreInstance(r: ByteReader): void {
    const tag = r.byte();
    if (tag === 0x00) {
      const module = r.u32();
      if (module >= this.out.coreModules.length) r.fail(`core module index ${module} out of range`);
      r.vec('instantiate arg', () => {
        r.name();
        if (r.byte() !== 0x12) r.fail('core instantiate argument must be an instance');
        this.at(this.coreInstances, r.u32(), 'core instance', r);
      });
      this.coreInstances.push({ kind: 'instantiate', module });
    } else if (tag === 0x01) {
      r.vec('core inline export', () => {
        r.name();
        const c = r.byte();
        if (!CORE_SORTS[c]) r.fail(`unknown core sort 0x${c.toString(16)}`);
        r.u32();
      });
      this.coreInstances.push({ kind: 'exports' });
    } else r.fail(`unknown core instance expression 0x${tag.toString(16)}`);
  }

  private instance(r: ByteReader): void {
    const tag = r.byte();
    if (tag === 0x00) throw new UnsupportedComponent('instantiating nested components is not supported in a policy');
    if (tag !== 0x01) r.fail(`unknown instance expression 0x${tag.toString(16)}`);
    const exports: InstanceShape = new Map();
    r.vec('inline export', () => {
      const name = this.externName(r);
      const sort = this.sort(r);
      exports.set(name, this.shapeOf(sort, r.u32(), r));
    });
    this.instances.push(exports);
  }

  /** The shape of an existing item, for inline-export instances and top-level exports. */
  private shapeOf(sort: Sort, idx: number, r: ByteReader): ExternShape {
    switch (sort) {
      case 'func':
        return { sort: 'func', type: this.at(this.funcs, idx, 'func', r) };
      case 'type':
        return { sort: 'type', type: this.at(this.top.types, idx, 'type', r) };
      case 'instance':
        return { sort: 'instance', exports: this.at(this.instances, idx, 'instance', r) };
      case 'component':
        if (idx >= this.componentCount) r.fail(`component index ${idx} out of range`);
        return { sort: 'component' };
      case 'core-module':
        if (idx >= this.out.coreModules.length) r.fail(`core module index ${idx} out of range`);
        return { sort: 'core-module' };
      default:
        throw new UnsupportedComponent(`a ${sort} cannot be exported from a policy`);
    }
  }

  /** Adds a new item of `shape` to the matching index space (imports, exports, aliases). */
  private push(shape: ExternShape): void {
    switch (shape.sort) {
      case 'func':
        this.funcs.push(shape.type);
        return;
      case 'type':
        this.top.types.push(shape.type);
        return;
      case 'instance':
        this.instances.push(shape.exports);
        return;
      case 'component':
        this.componentCount++;
        return;
      case 'core-module':
        throw new UnsupportedComponent('importing or aliasing core modules is not supported in a policy');
      case 'value':
        throw new UnsupportedComponent('component values are not supported in a policy');
    }
  }

  private alias(r: ByteReader): void {
    const sort = this.sort(r);
    const target = r.byte();
    if (target === 0x00) {
      const inst = this.at(this.instances, r.u32(), 'instance', r);
      const name = r.name();
      const ext = inst.get(name);
      if (!ext) r.fail(`alias of missing instance export ${quoteName(name)}`);
      if (ext.sort !== sort) r.fail(`alias of ${quoteName(name)} as ${sort}, but it is a ${ext.sort}`);
      this.push(ext);
    } else if (target === 0x01) {
      const instance = r.u32();
      this.at(this.coreInstances, instance, 'core instance', r);
      const name = r.name();
      switch (sort) {
        case 'core-func':
          this.coreFuncs.push({ kind: 'export', instance, name });
          return;
        case 'core-table':
          this.coreCounts.table++;
          return;
        case 'core-memory':
          this.coreCounts.memory++;
          return;
        case 'core-global':
          this.coreCounts.global++;
          return;
        default:
          r.fail(`core export alias of sort ${sort}`);
      }
    } else if (target === 0x02) {
      const ct = r.u32();
      const idx = r.u32();
      if (ct !== 0) r.fail('outer alias beyond the top-level component');
      if (sort === 'type') this.top.types.push(this.at(this.top.types, idx, 'type', r));
      else throw new UnsupportedComponent(`outer alias of a ${sort} is not supported in a policy`);
    } else r.fail(`unknown alias target 0x${target.toString(16)}`);
  }

  private canonOpts(r: ByteReader): StringEncoding {
    let encoding: StringEncoding = 'utf8';
    r.vec('canon option', () => {
      const opt = r.byte();
      switch (opt) {
        case 0x00:
          encoding = 'utf8';
          return;
        case 0x01:
          encoding = 'utf16';
          return;
        case 0x02:
          encoding = 'latin1+utf16';
          return;
        case 0x03: // memory
        case 0x04: // realloc
        case 0x05: // post-return
          r.u32();
          return;
        default:
          throw new UnsupportedComponent(
            `canonical option 0x${opt.toString(16)} (async or newer) is not supported in a policy`,
          );
      }
    });
    return encoding;
  }

  private canon(r: ByteReader): void {
    const op = r.byte();
    if (op === 0x00) {
      if (r.byte() !== 0x00) r.fail('canon lift of a non-function');
      const coreFunc = r.u32();
      this.at(this.coreFuncs, coreFunc, 'core func', r);
      const stringEncoding = this.canonOpts(r);
      const def = this.at(this.top.types, r.u32(), 'type', r);
      if (def.kind !== 'func') r.fail('canon lift with a non-function type');
      this.liftedCoreFunc.set(this.funcs.length, coreFunc);
      this.out.canons.push({ kind: 'lift', stringEncoding, func: this.funcs.length });
      this.funcs.push(def.type);
    } else if (op === 0x01) {
      if (r.byte() !== 0x00) r.fail('canon lower of a non-function');
      const func = r.u32();
      this.at(this.funcs, func, 'func', r);
      const stringEncoding = this.canonOpts(r);
      this.out.canons.push({ kind: 'lower', stringEncoding, func });
      this.coreFuncs.push({ kind: 'other' });
    } else {
      throw new UnsupportedComponent(
        `canonical built-in 0x${op.toString(16)} (resources, threads, async) is not part of the capgate contract`,
      );
    }
  }

  private externName(r: ByteReader): string {
    const tag = r.byte();
    // 0x00: plain name; 0x01: legacy "interface name" marker, same payload.
    if (tag !== 0x00 && tag !== 0x01) r.fail(`unsupported import/export name encoding 0x${tag.toString(16)}`);
    return r.name();
  }

  private import(r: ByteReader): void {
    const name = this.externName(r);
    const extern = this.externDesc(r, this.top);
    this.out.imports.push({ name, extern });
    this.push(extern);
  }

  private export(r: ByteReader): void {
    const name = this.externName(r);
    const sort = this.sort(r);
    const idx = r.u32();
    let extern = this.shapeOf(sort, idx, r);
    if (sort === 'func') this.exportedFuncs.set(name, idx);
    const hasAscription = r.byte();
    if (hasAscription === 0x01) {
      const ascribed = this.externDesc(r, this.top);
      // The check below judges the exported item's own type; an ascription may not disguise it.
      if (
        extern.sort === 'func' &&
        (ascribed.sort !== 'func' || matchFuncType(extern.type, ascribed.type, name) !== null)
      ) {
        throw new UnsupportedComponent(
          `export ${quoteName(name)} carries a type ascription that differs from the exported function's type`,
        );
      }
      extern = ascribed;
    } else if (hasAscription !== 0x00) r.fail('bad export type ascription flag');
    this.out.exports.push({ name, extern });
    this.push(extern);
  }

  private externDesc(r: ByteReader, scope: TypeScope): ExternShape {
    const tag = r.byte();
    switch (tag) {
      case 0x00:
        if (r.byte() !== 0x11) r.fail('bad core module extern descriptor');
        r.u32();
        return { sort: 'core-module' };
      case 0x01: {
        const def = this.at(scope.types, r.u32(), 'type', r);
        if (def.kind !== 'func') r.fail('func extern with a non-function type');
        return { sort: 'func', type: def.type };
      }
      case 0x02:
        return { sort: 'value' };
      case 0x03: {
        const bound = r.byte();
        if (bound === 0x00) return { sort: 'type', type: this.at(scope.types, r.u32(), 'type', r) };
        if (bound === 0x01) return { sort: 'type', type: { kind: 'resource' } };
        return r.fail(`unknown type bound 0x${bound.toString(16)}`);
      }
      case 0x04:
        this.at(scope.types, r.u32(), 'type', r);
        return { sort: 'component' };
      case 0x05: {
        const def = this.at(scope.types, r.u32(), 'type', r);
        if (def.kind !== 'instance') r.fail('instance extern with a non-instance type');
        return { sort: 'instance', exports: def.exports };
      }
      default:
        return r.fail(`unknown extern descriptor 0x${tag.toString(16)}`);
    }
  }

  private defType(r: ByteReader, scope: TypeScope): TypeDef {
    const b = r.peek();
    if (b === 0x40) {
      r.byte();
      return { kind: 'func', type: this.funcType(r, scope) };
    }
    if (b === 0x41 || b === 0x42) {
      r.byte();
      if (scope.depth >= MAX_SCOPE_DEPTH) r.fail('component/instance types nested too deeply');
      const inner: TypeScope = { types: [], parent: scope, depth: scope.depth + 1 };
      const exports: InstanceShape = new Map();
      r.vec('type declaration', () => this.decl(r, inner, exports, b === 0x41));
      return b === 0x42 ? { kind: 'instance', exports } : { kind: 'component' };
    }
    if (b === 0x3f) throw new UnsupportedComponent('resource types are not part of the capgate contract');
    return { kind: 'value', type: this.defValType(r, scope) };
  }

  private decl(r: ByteReader, scope: TypeScope, exports: InstanceShape, isComponent: boolean): void {
    const tag = r.byte();
    switch (tag) {
      case 0x00:
        throw new UnsupportedComponent('core types inside component types are not supported in a policy');
      case 0x01:
        scope.types.push(this.defType(r, scope));
        return;
      case 0x02: {
        const sort = this.sort(r);
        if (r.byte() !== 0x02 || sort !== 'type')
          throw new UnsupportedComponent('only outer type aliases are supported inside type declarations');
        let target: TypeScope | null = scope;
        for (let ct = r.u32(); ct > 0 && target; ct--) target = target.parent;
        if (!target) r.fail('outer alias count exceeds the enclosing scopes');
        scope.types.push(this.at(target.types, r.u32(), 'type', r));
        return;
      }
      case 0x03:
      case 0x04: {
        // An import declaration has the same shape as an export declaration.
        if (tag === 0x03 && !isComponent) r.fail('import declaration inside an instance type');
        const name = this.externName(r);
        const ext = this.externDesc(r, scope);
        if (ext.sort === 'type') scope.types.push(ext.type);
        if (tag === 0x04) {
          if (exports.has(name)) r.fail(`duplicate export ${quoteName(name)} in an instance type`);
          exports.set(name, ext);
        }
        return;
      }
      default:
        r.fail(`unknown type declaration 0x${tag.toString(16)}`);
    }
  }

  private funcType(r: ByteReader, scope: TypeScope): FuncType {
    const params = r.vec('param', () => ({ name: r.name(), type: this.valType(r, scope) }));
    const tag = r.byte();
    if (tag === 0x00) return { params, result: this.valType(r, scope) };
    if (tag !== 0x01) r.fail('bad function result list');
    const named = r.vec('result', () => ({ name: r.name(), type: this.valType(r, scope) }));
    return { params, result: named.length === 0 ? null : { kind: 'unsupported', what: 'named results' } };
  }

  private defValType(r: ByteReader, scope: TypeScope): ValType {
    const b = r.byte();
    const prim = PRIM_BY_OPCODE.get(b);
    if (prim) return prim;
    const opt = (): ValType | null => {
      const f = r.byte();
      if (f === 0x00) return null;
      if (f === 0x01) return this.valType(r, scope);
      return r.fail('bad optional value type flag');
    };
    switch (b) {
      case 0x72:
        return this.composite({
          kind: 'record',
          fields: this.items(r, 'record', 'field', () => ({ name: r.name(), type: this.valType(r, scope) })),
        });
      case 0x71:
        return this.composite({
          kind: 'variant',
          cases: this.items(r, 'variant', 'case', () => {
            const name = r.name();
            const type = opt();
            const refines = r.byte();
            if (refines === 0x01) r.u32();
            else if (refines !== 0x00) r.fail('bad variant case trailer');
            return { name, type };
          }),
        });
      case 0x70:
        return this.composite({ kind: 'list', element: this.valType(r, scope) });
      case 0x6f:
        return this.composite({
          kind: 'tuple',
          elements: this.items(r, 'tuple', 'element', () => this.valType(r, scope)),
        });
      case 0x6e:
        return this.composite({ kind: 'flags', names: this.items(r, 'flags', 'flag', () => r.name()) });
      case 0x6d:
        return this.composite({ kind: 'enum', names: this.items(r, 'enum', 'case', () => r.name()) });
      case 0x6b:
        return this.composite({ kind: 'option', inner: this.valType(r, scope) });
      case 0x6a: {
        const ok = opt();
        const err = opt();
        return this.composite({ kind: 'result', ok, err });
      }
      case 0x69:
      case 0x68:
        this.at(scope.types, r.u32(), 'type', r);
        return { kind: 'unsupported', what: b === 0x69 ? 'own<resource>' : 'borrow<resource>' };
      default:
        throw new UnsupportedComponent(
          `value type constructor 0x${b.toString(16)} (stream, future, ...) is not part of the capgate contract`,
        );
    }
  }

  /** The items of a record, variant, tuple, flags or enum, after checking how many there are. */
  private items<T>(r: ByteReader, kind: string, what: string, item: () => T): T[] {
    const n = r.count(what);
    const limit = this.typeLimits.maxTypeWidth;
    if (n > limit)
      throw new UnsupportedComponent(
        `the component defines a ${kind} type of ${n} ${what === 'case' || what === 'flag' || what === 'field' ? `${what}s` : 'elements'}; the limit is ${limit} (limits.maxTypeWidth)`,
      );
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }

  /** Records the nesting depth of a composite type, refusing one nested deeper than the limit. */
  private composite(t: ValType): ValType {
    const children: Array<ValType | null> =
      t.kind === 'record'
        ? t.fields.map((f) => f.type)
        : t.kind === 'variant'
          ? t.cases.map((c) => c.type)
          : t.kind === 'tuple'
            ? t.elements
            : t.kind === 'list'
              ? [t.element]
              : t.kind === 'option'
                ? [t.inner]
                : t.kind === 'result'
                  ? [t.ok, t.err]
                  : [];
    let depth = 1;
    for (const c of children) if (c !== null) depth = Math.max(depth, 1 + (this.depths.get(c) ?? 1));
    const limit = this.typeLimits.maxTypeDepth;
    if (depth > limit)
      throw new UnsupportedComponent(
        `the component defines a ${t.kind} type nested ${depth} deep; the limit is ${limit} (limits.maxTypeDepth)`,
      );
    this.depths.set(t, depth);
    return t;
  }

  /** valtype: a primitive opcode, or a type index (s33 LEB128, non-negative). */
  private valType(r: ByteReader, scope: TypeScope): ValType {
    const b = r.peek();
    if (b >= 0x40 && b < 0x80) {
      r.byte();
      return PRIM_BY_OPCODE.get(b) ?? r.fail(`unknown primitive value type 0x${b.toString(16)}`);
    }
    const idx = r.u32();
    const def = this.at(scope.types, idx, 'type', r);
    if (def.kind === 'value') return def.type;
    if (def.kind === 'resource') return { kind: 'unsupported', what: 'resource' };
    return r.fail(`value type refers to a ${def.kind} type`);
  }

  /** Finds the core module whose `evaluate` export is lifted as the component's `evaluate`. */
  private traceEvaluate(): void {
    const lift = this.out.canons.find((c) => c.kind === 'lift' && this.exportedFuncs.get('evaluate') === c.func);
    if (!lift) return;
    const coreFunc = this.coreFuncs[this.liftedCoreFunc.get(lift.func) ?? -1];
    if (coreFunc?.kind !== 'export' || coreFunc.name !== 'evaluate') return;
    const inst = this.coreInstances[coreFunc.instance];
    if (inst?.kind === 'instantiate') this.out.evaluateModule = inst.module;
  }
}

export { MalformedBinary };
