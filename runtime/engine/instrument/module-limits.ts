// Upload limits on what the core module declares. Instantiation (every decision makes a fresh
// instance) allocates each table, applies every element and data segment and initialises every
// global; compilation is proportional to the functions and the code. None of that is metered
// by fuel, so it is bounded here, from the section headers, before binaryen or V8 compile
// anything: a 2.8 KB module can declare a 10M-entry table. Each refusal names the limit and the
// value found. Reads the raw sections with the bounds-checked reader: a malformed module is
// refused, never trusted.
import { ByteReader, MalformedBinary } from '../component/byte-reader.ts';
import { invalidModule } from '../component/rejection.ts';
import type { EngineLimits } from '../limits.ts';
import { CORE_SECTION as SECTION, coreSections } from './core-sections.ts';

export type ModuleLimits = Pick<
  EngineLimits,
  | 'maxTableEntries'
  | 'maxElementEntries'
  | 'maxDataBytes'
  | 'maxSegments'
  | 'maxGlobals'
  | 'maxFunctions'
  | 'maxCodeBytes'
>;

/** What the module declares that instantiation and compilation pay for. */
export interface ModuleShape {
  functions: number;
  codeBytes: number;
  globals: number;
  /** Per table: initial entries and declared maximum (null: none declared). */
  tables: Array<{ initial: number; max: number | null }>;
  elementEntries: number;
  dataBytes: number;
  segments: number;
  /** Initial pages of the memory (every fresh instance starts with them zeroed). */
  memoryPages: number;
}

export function readModuleShape(core: Uint8Array): ModuleShape {
  const shape: ModuleShape = {
    functions: 0,
    codeBytes: 0,
    globals: 0,
    tables: [],
    elementEntries: 0,
    dataBytes: 0,
    segments: 0,
    memoryPages: 0,
  };
  for (const s of coreSections(core)) {
    const r = new ByteReader(core, s.payload, s.end);
    switch (s.id) {
      case SECTION.function:
        shape.functions = r.u32();
        break;
      case SECTION.code:
        shape.codeBytes = s.end - s.payload;
        break;
      case SECTION.global:
        shape.globals = r.u32();
        break;
      case SECTION.memory:
        for (let n = r.count('memory'); n > 0; n--) {
          const flags = r.byte();
          const initial = r.u32();
          if (flags & 0x01) r.u32();
          shape.memoryPages += initial;
        }
        break;
      case SECTION.table:
        for (let n = r.count('table'); n > 0; n--) {
          r.byte(); // reference type
          shape.tables.push(limits(r));
        }
        break;
      case SECTION.element:
        for (let n = r.count('element segment'); n > 0; n--) {
          shape.segments++;
          shape.elementEntries += elementSegmentEntries(r);
        }
        break;
      case SECTION.data:
        for (let n = r.count('data segment'); n > 0; n--) {
          shape.segments++;
          shape.dataBytes += dataSegmentBytes(r);
        }
        break;
    }
  }
  return shape;
}

/** Refuses a module that declares more than the limits allow. */
export function checkModuleLimits(core: Uint8Array, l: ModuleLimits): ModuleShape {
  let shape: ModuleShape;
  try {
    shape = readModuleShape(core);
  } catch (err) {
    if (err instanceof MalformedBinary)
      throw invalidModule(`the core module inside the component is not valid WebAssembly (${err.message})`);
    throw err;
  }
  const over = (what: string, found: number, limit: number, key: keyof ModuleLimits): void => {
    if (found > limit)
      throw invalidModule(
        `the core module declares ${what.replace('#', String(found))}; the limit is ${limit} (limits.${key})`,
      );
  };
  let tableEntries = 0;
  for (const t of shape.tables) {
    over('a table of # entries', t.initial, l.maxTableEntries, 'maxTableEntries');
    if (t.max !== null) over('a table with a maximum of # entries', t.max, l.maxTableEntries, 'maxTableEntries');
    tableEntries += t.initial;
  }
  over('tables of # entries together', tableEntries, l.maxTableEntries, 'maxTableEntries');
  over('# element entries', shape.elementEntries, l.maxElementEntries, 'maxElementEntries');
  over('# bytes of data segments', shape.dataBytes, l.maxDataBytes, 'maxDataBytes');
  over('# data and element segments', shape.segments, l.maxSegments, 'maxSegments');
  over('# globals', shape.globals, l.maxGlobals, 'maxGlobals');
  over('# functions', shape.functions, l.maxFunctions, 'maxFunctions');
  over('a code section of # bytes', shape.codeBytes, l.maxCodeBytes, 'maxCodeBytes');
  return shape;
}

/**
 * The limits the instrumented module keeps when the upload kept `l`: the instrumenter adds three
 * globals (fuel, oom, the deferred start's flag), its metering helpers (memory.grow, fill, copy,
 * one memory.init per data segment) and code: a charge (at most 37 bytes) per function and loop,
 * and the start's prelude (at most 20) per export. A function body takes at least 2 bytes and a
 * loop at least 3, so the code grows at most 20-fold (binaryen's re-encoding aside). Tables,
 * element entries, data and segments are the guest's alone. The daemon re-checks the module the
 * compile process returns against these (verify/verify-core.ts).
 */
export function instrumentedModuleLimits(l: ModuleLimits): ModuleLimits {
  return {
    ...l,
    maxGlobals: l.maxGlobals + 3,
    maxFunctions: l.maxFunctions + 3 + l.maxSegments,
    maxCodeBytes: l.maxCodeBytes * 20,
  };
}

function limits(r: ByteReader): { initial: number; max: number | null } {
  const flags = r.byte();
  if (flags !== 0x00 && flags !== 0x01) r.fail(`unsupported table limits flags 0x${flags.toString(16)}`);
  const initial = r.u32();
  return { initial, max: flags === 0x01 ? r.u32() : null };
}

/**
 * Skips a constant expression: the instructions a segment offset or element may use (MVP,
 * reference types, extended-const), up to its `end`. Anything else is refused.
 */
function skipConstExpr(r: ByteReader): void {
  for (;;) {
    const op = r.byte();
    switch (op) {
      case 0x0b: // end
        return;
      case 0x41: // i32.const
      case 0x42: // i64.const
        signedLeb(r);
        break;
      case 0x43: // f32.const
        r.take(4);
        break;
      case 0x44: // f64.const
        r.take(8);
        break;
      case 0x23: // global.get
      case 0xd2: // ref.func
        r.u32();
        break;
      case 0xd0: // ref.null
        r.byte();
        break;
      case 0x6a:
      case 0x6b:
      case 0x6c: // i32.add, sub, mul
      case 0x7c:
      case 0x7d:
      case 0x7e: // i64.add, sub, mul
        break;
      default:
        r.fail(`unsupported instruction 0x${op.toString(16)} in a constant expression`);
    }
  }
}

function signedLeb(r: ByteReader): void {
  for (let i = 0; i < 10; i++) if ((r.byte() & 0x80) === 0) return;
  r.fail('LEB128 longer than 10 bytes');
}

/** Entries of one element segment (binary format: eight encodings, by the flags). */
function elementSegmentEntries(r: ByteReader): number {
  const flags = r.u32();
  if (flags > 7) r.fail(`unknown element segment flags ${flags}`);
  const active = (flags & 0x01) === 0;
  const explicitTable = (flags & 0x02) !== 0;
  const expressions = (flags & 0x04) !== 0;
  if (active && explicitTable) r.u32(); // table index
  if (active) skipConstExpr(r);
  if (!active || explicitTable) r.byte(); // elemkind (indices) or reftype (expressions)
  const n = r.count('element');
  for (let i = 0; i < n; i++) {
    if (expressions) skipConstExpr(r);
    else r.u32();
  }
  return n;
}

/** Bytes of one data segment, skipped. */
function dataSegmentBytes(r: ByteReader): number {
  const flags = r.u32();
  if (flags === 2) r.u32(); // memory index
  if (flags === 0 || flags === 2) skipConstExpr(r);
  else if (flags !== 1) r.fail(`unknown data segment flags ${flags}`);
  const n = r.count('data byte');
  r.take(n);
  return n;
}
