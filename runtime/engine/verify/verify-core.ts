// Verifies that an instrumented core module, as the compile process returned it, is metered.
// That process decodes untrusted bytes and may be running an attacker's code, so the daemon
// does not take its word: before WebAssembly.compile, the returned module must meet the rule
// below, checked on its bytes alone (nothing of the original upload is needed).
//
// The rule. A *charge* is exactly what fuel.ts emits:
//     global.get F; i64.const C; i64.sub; global.set F; global.get F; i64.const 0; i64.lt_s;
//     if (empty); unreachable; end
// with F the global exported as __capgate_fuel (defined here, mutable i64) and C >= 1. Every
// function body and every loop body is a *region*: its instructions, not counting the bodies of
// the loops nested in it (regions of their own). A function is *charged* when its body begins
// with a charge (after, at most, the deferred start's fixed prelude: deferred-start.ts), a
// *metering helper* when its body is exactly one of the helpers instrument.ts adds (memory.grow;
// memory.fill/copy/init, each charging its size at run time), and *uncharged* otherwise.
//   1. Every loop body begins with a charge.
//   2. Every exported function and every function in an element segment is charged (the only
//      ways into the module other than a direct call); there is no start section (the
//      instrumenter defers the start function into the exports).
//   3. Uncharged functions call one another acyclically. Their *total* is their instruction
//      count plus the totals of the uncharged functions they call (memoised, capped).
//   4. The charge of a region has C >= ceil(n / K), n = its instructions (the charge's own ten
//      and the prelude's seven aside) plus the totals of the uncharged functions it calls.
//   5. global.set F appears only in charges and metering helpers (nothing refills the fuel), and
//      memory.grow, memory.fill, memory.copy and memory.init only in metering helpers.
//   6. The imports are exactly the host functions (with their contract signatures) and the
//      memory capgate:engine.memory, with a maximum within the job's limit; the memory plan
//      section says the same limits; the module declares no memory of its own.
//   7. The static instantiation limits hold (module-limits.ts: the upload's, with what the
//      instrumenter adds).
//
// Why it is sound: inside a region, control only moves forward except by a branch to a loop
// header, which enters that loop's region anew (and pays its charge); so one entry of a region
// runs each of its instructions at most once, plus, for each direct call to an uncharged
// function, at most that function's total (by induction over the acyclic calls). Every region
// entry is paid: a loop body by its charge (1), a charged function by its charge, an uncharged
// function by its caller's charge (4) - it can be entered only by a direct call (2: not
// exported, not in a table; a table holds only what element segments put there, as table.set,
// table.grow, table.init and table.copy are refused). A call to a charged function, a host
// function or a metering helper is one instruction of the caller; the callee pays for itself
// (host functions charge fuel per call and per byte in the engine; a metering helper runs at
// most 59 instructions plus work it charges by size). So a run that used fuel f executed at most
// (59 * K + 17) * f instructions (17: a charge and the prelude, per region entry, which pays at
// least 1), plus host work the host prices: time per fuel unit is bounded by a constant, which is
// all a fuel slice needs. K is not exactness: binaryen counts IR expressions, this counts opcodes
// (an `end`, an `else`).
import { HOST_INTERFACE } from '../../contract/types.ts';
import { ByteReader, MalformedBinary } from '../component/byte-reader.ts';
import { PolicyRejection } from '../component/rejection.ts';
import {
  FUEL_GLOBAL as FUEL_EXPORT,
  MEMORY_IMPORT_MODULE,
  MEMORY_IMPORT_NAME,
  MEMORY_PLAN_SECTION,
  OOM_GLOBAL as OOM_EXPORT,
} from '../instrumentation-globals.ts';
import { HOST_IMPORT_SIGNATURES, RESERVED_EXPORT_PREFIX } from '../instrument/core-signatures.ts';
import { CORE_SECTION as SECTION, coreSections } from '../instrument/core-sections.ts';
import { BULK_BYTES_PER_FUEL_LOG2, MEMORY_GROW_FUEL } from '../instrument/metering-constants.ts';
import {
  checkModuleLimits,
  instrumentedModuleLimits,
  type ModuleLimits,
  type ModuleShape,
} from '../instrument/module-limits.ts';
import { type Instruction, nextInstruction, OP, UnsupportedInstruction } from './instructions.ts';

/**
 * Instructions a region may hold per unit of its charge. The instrumenter charges one unit per
 * binaryen expression; an expression is at most a few opcodes (block: block + end; if: if, else,
 * end): at most 2.0 per unit measured on the guest examples (every fixture of the suite passes).
 */
export const INSTRUCTIONS_PER_FUEL = 4;
/** Above this an uncharged call chain is refused (the instrumenter charges helpers past 10,000 expressions on entry). */
const MAX_UNCHARGED_TOTAL = 1_000_000_000;

/** A module the verifier refuses, with what and where. */
export class NotMetered extends Error {}

export interface VerifiedCore {
  /** Host functions the module imports, in import order. */
  hostFunctions: string[];
  /** What instantiating it costs, from its own sections (the memory's initial pages from its import). */
  shape: ModuleShape;
  memory: { initial: number; max: number };
}

export type VerifyLimits = ModuleLimits & { memoryPages: number };

const VALTYPE_NAMES: Record<string, number> = { i32: 0x7f, i64: 0x7e };

interface Global {
  type: number;
  mutable: boolean;
}

interface Region {
  /** Function index and byte offset of the region's first instruction (for messages). */
  fn: number;
  at: number;
  /** The charge's constant; null: an uncharged function's body. */
  charge: number | null;
  count: number;
  /** Direct calls to functions defined here (resolved once every body is read). */
  calls: number[];
}

type Kind = 'charged' | 'helper' | 'uncharged';

const fail = (message: string): never => {
  throw new NotMetered(message);
};

/** Refuses (NotMetered) a module that does not meet the rule above; else what the daemon needs of it. */
export function verifyInstrumentedCore(core: Uint8Array, limits: VerifyLimits): VerifiedCore {
  try {
    return verify(core, limits);
  } catch (err) {
    if (err instanceof MalformedBinary) fail(`malformed module: ${err.message}`);
    if (err instanceof UnsupportedInstruction) fail(`it uses ${err.message}`);
    if (err instanceof PolicyRejection) fail(err.message);
    throw err;
  }
}

function verify(core: Uint8Array, limits: VerifyLimits): VerifiedCore {
  const sections = coreSections(core);
  const shape = checkModuleLimits(core, instrumentedModuleLimits(limits));
  const types: Array<{ params: number[]; results: number[] }> = [];
  const hostFunctions: string[] = [];
  let funcImports = 0;
  let memory: { initial: number; max: number } | undefined;
  const definedTypes: number[] = [];
  const globals: Global[] = [];
  const entryPoints = new Map<number, string>(); // function -> how it is reachable other than by a direct call
  let fuel = -1;
  let oom = -1;
  let plans = 0;
  let plan: { initial: number; max: number } | undefined;
  let code: { payload: number; end: number } | undefined;

  for (const s of sections) {
    const r = new ByteReader(core, s.payload, s.end);
    switch (s.id) {
      case SECTION.custom:
        if (r.name() === MEMORY_PLAN_SECTION) {
          plans++;
          if (s.end - r.pos !== 8) fail(`its ${MEMORY_PLAN_SECTION} section is not 8 bytes`);
          const v = new DataView(core.buffer, core.byteOffset + r.pos, 8);
          plan = { initial: v.getUint32(0, true), max: v.getUint32(4, true) };
        }
        break;
      case SECTION.type:
        for (let n = r.count('type'); n > 0; n--) {
          if (r.byte() !== 0x60) r.fail('a type that is not a function type');
          const params = r.vec('param', (x) => x.byte());
          const results = r.vec('result', (x) => x.byte());
          types.push({ params, results });
        }
        break;
      case SECTION.import:
        for (let n = r.count('import'); n > 0; n--) {
          const module = r.name();
          const name = r.name();
          const kind = r.byte();
          const where = `import ${JSON.stringify(module)}.${JSON.stringify(name)}`.slice(0, 300);
          if (kind === 0x00) {
            const type = types[r.u32()];
            const want = HOST_IMPORT_SIGNATURES.get(name);
            if (module !== HOST_INTERFACE || want === undefined) fail(`it has an extra ${where}`);
            const same = (a: number[] | undefined, b: string[]): boolean =>
              a !== undefined && a.length === b.length && b.every((t, i) => a[i] === VALTYPE_NAMES[t]);
            if (!same(type?.params, want!.params) || !same(type?.results, want!.results))
              fail(`its ${where} has a signature other than the contract's`);
            if (hostFunctions.includes(name)) fail(`it has ${where} twice`);
            hostFunctions.push(name);
            funcImports++;
          } else if (kind === 0x02) {
            if (module !== MEMORY_IMPORT_MODULE || name !== MEMORY_IMPORT_NAME || memory !== undefined)
              fail(`it has an extra ${where}`);
            if (r.byte() !== 0x01) fail(`its ${where} is not an unshared memory with a maximum`);
            memory = { initial: r.u32(), max: r.u32() };
            if (memory.max > limits.memoryPages || memory.initial > memory.max)
              fail(
                `its ${where} has limits ${memory.initial}..${memory.max} pages; the job's limit is ${limits.memoryPages} pages`,
              );
          } else fail(`it has an extra ${where} (not a function nor the memory)`);
        }
        break;
      case SECTION.function:
        for (let n = r.count('function'); n > 0; n--) definedTypes.push(r.u32());
        break;
      case SECTION.memory:
        fail('it declares a memory of its own (the instrumenter imports it)');
        break;
      case SECTION.global:
        for (let n = r.count('global'); n > 0; n--) {
          const type = r.byte();
          const mut = r.byte();
          if (mut > 1) r.fail(`global mutability flag ${mut}`);
          constantExpression(r);
          globals.push({ type, mutable: mut === 1 });
        }
        break;
      case SECTION.export:
        for (let n = r.count('export'); n > 0; n--) {
          const name = r.name();
          const kind = r.byte();
          const index = r.u32();
          if (kind === 0x00) entryPoints.set(index, `exported as ${JSON.stringify(name).slice(0, 200)}`);
          else if (kind === 0x03 && name === FUEL_EXPORT) fuel = index;
          else if (kind === 0x03 && name === OOM_EXPORT) oom = index;
          else if (name.startsWith(RESERVED_EXPORT_PREFIX))
            fail(`it exports ${JSON.stringify(name).slice(0, 200)}, a name reserved for the engine`);
        }
        break;
      case SECTION.start:
        fail('it has a start section (the instrumenter defers the start function)');
        break;
      case SECTION.element:
        for (let n = r.count('element segment'); n > 0; n--) {
          for (const f of elementFunctions(r)) entryPoints.set(f, 'in an element segment');
        }
        break;
      case SECTION.code:
        code = { payload: s.payload, end: s.end };
        break;
      case SECTION.table: // its sizes: checkModuleLimits
      case 11:
      case SECTION.dataCount:
        break;
      default:
        fail(`it has a section of unknown id ${s.id}`);
    }
  }

  if (memory === undefined) fail(`it does not import its memory as ${MEMORY_IMPORT_MODULE}.${MEMORY_IMPORT_NAME}`);
  const mem = memory!;
  if (plans !== 1 || plan === undefined || plan.initial !== mem.initial || plan.max !== mem.max)
    fail(`its ${MEMORY_PLAN_SECTION} section does not state the memory import's limits`);
  const checkGlobal = (index: number, name: string, type: number): void => {
    const g = globals[index];
    if (index < 0 || g === undefined) fail(`it does not export its own global ${name}`);
    if (g!.type !== type || !g!.mutable) fail(`its global ${name} is not a mutable ${type === 0x7e ? 'i64' : 'i32'}`);
  };
  checkGlobal(fuel, FUEL_EXPORT, 0x7e);
  checkGlobal(oom, OOM_EXPORT, 0x7f);

  const bodies = readBodies(core, code, definedTypes.length, { funcImports, fuel, oom });
  checkRegions(bodies, entryPoints, funcImports);
  return { hostFunctions, shape: { ...shape, memoryPages: mem.initial }, memory: mem };
}

/** A constant expression of a global: one numeric constant or global.get, then end. */
function constantExpression(r: ByteReader): void {
  const op = r.byte();
  if (op === 0x41 || op === 0x42 || op === 0x23) r.take(leb(r));
  else if (op === 0x43) r.take(4);
  else if (op === 0x44) r.take(8);
  else if (op === 0xfd && r.u32() === 12) r.take(16);
  else r.fail(`unsupported constant expression opcode 0x${op.toString(16)}`);
  if (r.byte() !== 0x0b) r.fail('a constant expression longer than one instruction');
}

/** Length of the LEB128 at the reader's position (left unread), at most 10 bytes. */
function leb(r: ByteReader): number {
  for (let i = 0; i < 10; i++) if ((r.bytes[r.pos + i] ?? 0) < 0x80) return i + 1;
  return r.fail('LEB128 longer than 10 bytes');
}

/** The functions an element segment lists (binary format: eight encodings by the flags). */
function elementFunctions(r: ByteReader): number[] {
  const flags = r.u32();
  if (flags > 7) r.fail(`unknown element segment flags ${flags}`);
  const active = (flags & 0x01) === 0;
  const explicitTable = (flags & 0x02) !== 0;
  const expressions = (flags & 0x04) !== 0;
  if (active && explicitTable) r.u32();
  if (active) {
    const op = r.byte();
    if (op === 0x41 || op === 0x23) r.take(leb(r));
    else r.fail(`unsupported element offset opcode 0x${op.toString(16)}`);
    if (r.byte() !== 0x0b) r.fail('an element offset longer than one instruction');
  }
  if (!active || explicitTable) r.byte(); // elemkind or reftype
  const out: number[] = [];
  for (let n = r.count('element'); n > 0; n--) {
    if (!expressions) {
      out.push(r.u32());
      continue;
    }
    const op = r.byte();
    if (op === 0xd2) out.push(r.u32());
    else if (op === 0xd0) r.byte();
    else r.fail(`unsupported element expression opcode 0x${op.toString(16)}`);
    if (r.byte() !== 0x0b) r.fail('an element expression longer than one instruction');
  }
  return out;
}

interface Bodies {
  kinds: Kind[];
  regions: Region[];
  /** Region index of each uncharged function's body, by function index. */
  topRegion: Map<number, number>;
  /** Functions the deferred-start preludes call: must be charged. */
  preludeCalls: Array<{ fn: number; callee: number }>;
}

/** What a charge, a prelude and a metering helper are, instruction by instruction: [op, imm] (imm null: any). */
type Pattern = Array<readonly [number, number | null]>;

/** The end of every charge: the fuel (already less the cost) stored, and a trap if it went negative. */
const storeAndTrapIfNegative = (F: number): Pattern => [
  [OP.i64Sub, 0],
  [OP.globalSet, F],
  [OP.globalGet, F],
  [OP.i64Const, 0],
  [OP.i64LtS, 0],
  [OP.if, -64],
  [OP.unreachable, 0],
  [OP.end, 0],
];

const chargeOf = (F: number): Pattern => [[OP.globalGet, F], [OP.i64Const, null], ...storeAndTrapIfNegative(F)];
const CHARGE_LENGTH = chargeOf(0).length;

function helperPatterns(F: number, O: number): Pattern[] {
  const pageCost: Pattern = [
    [OP.localGet, 0],
    [OP.i64ExtendI32U, 0],
    [OP.i64Const, 16 - BULK_BYTES_PER_FUEL_LOG2],
    [OP.i64Shl, 0],
  ];
  const growFuel = chargeOf(F).map(([op, imm], i) => [op, i === 1 ? MEMORY_GROW_FUEL : imm] as const);
  const grow: Pattern = [
    ...growFuel,
    [OP.localGet, 0],
    [OP.i32Eqz, 0],
    [OP.if, -64],
    [OP.memorySize, 0],
    [OP.return, 0],
    [OP.end, 0],
    [OP.localGet, 0],
    [OP.i32Const, null],
    [OP.memorySize, 0],
    [OP.i32Sub, 0],
    [OP.i32GtU, 0],
    [OP.if, -64],
    [OP.i32Const, 1],
    [OP.globalSet, O],
    [OP.i32Const, -1],
    [OP.return, 0],
    [OP.end, 0],
    [OP.globalGet, F],
    ...pageCost,
    ...storeAndTrapIfNegative(F),
    [OP.localGet, 0],
    [OP.memoryGrow, 0],
    [OP.localSet, 1],
    [OP.localGet, 1],
    [OP.i32Const, -1],
    [OP.i32Eq, 0],
    [OP.if, -64],
    [OP.i32Const, 1],
    [OP.globalSet, O],
    // Gives back the pages' fuel only when the grow failed (nothing was done).
    [OP.globalGet, F],
    ...pageCost,
    [OP.i64Add, 0],
    [OP.globalSet, F],
    [OP.end, 0],
    [OP.localGet, 1],
    [OP.end, 0],
  ];
  const bulk = (op: number): Pattern => [
    [OP.globalGet, F],
    [OP.localGet, 2],
    [OP.i32Const, BULK_BYTES_PER_FUEL_LOG2],
    [OP.i32ShrU, 0],
    [OP.i64ExtendI32U, 0],
    ...storeAndTrapIfNegative(F),
    [OP.localGet, 0],
    [OP.localGet, 1],
    [OP.localGet, 2],
    [op, null],
    [OP.end, 0],
  ];
  return [grow, bulk(OP.memoryFill), bulk(OP.memoryCopy), bulk(OP.memoryInit)];
}

/** Decoded instructions of one body, as parallel arrays (reused from body to body). */
interface Decoded {
  ops: number[];
  imms: number[];
  ats: number[];
  n: number;
}

function matches(d: Decoded, from: number, pattern: Pattern): boolean {
  if (from + pattern.length > d.n) return false;
  for (let i = 0; i < pattern.length; i++) {
    const [op, imm] = pattern[i]!;
    if (d.ops[from + i] !== op || (imm !== null && d.imms[from + i] !== imm)) return false;
  }
  return true;
}

function readBodies(
  core: Uint8Array,
  code: { payload: number; end: number } | undefined,
  defined: number,
  g: { funcImports: number; fuel: number; oom: number },
): Bodies {
  const r = new ByteReader(core, code?.payload ?? 0, code?.end ?? 0);
  const count = code === undefined ? 0 : r.u32();
  if (count !== defined) fail(`its code section has ${count} bodies for ${defined} functions`);
  const charge = chargeOf(g.fuel);
  const helpers = helperPatterns(g.fuel, g.oom);
  const out: Bodies = { kinds: [], regions: [], topRegion: new Map(), preludeCalls: [] };
  const d: Decoded = { ops: [], imms: [], ats: [], n: 0 };
  const ins: Instruction = { op: 0, imm: 0, at: 0 };
  for (let j = 0; j < defined; j++) {
    const fn = g.funcImports + j;
    const body = r.sub(r.u32());
    for (let groups = body.count('local group'); groups > 0; groups--) {
      body.u32();
      body.byte();
    }
    d.n = 0;
    while (!body.done) {
      nextInstruction(body, ins);
      d.ops[d.n] = ins.op;
      d.imms[d.n] = ins.imm;
      d.ats[d.n] = ins.at;
      d.n++;
    }
    if (helpers.some((p) => p.length === d.n && matches(d, 0, p))) {
      out.kinds[fn] = 'helper';
      continue;
    }
    out.kinds[fn] = walkBody(d, fn, charge, g.fuel, out);
  }
  return out;
}

/** The deferred start's prelude (deferred-start.ts): `if (!started) { started = 1; call start }`. */
function preludeLength(d: Decoded, fuel: number): number {
  const g = d.imms[0];
  const prelude: Pattern = [
    [OP.globalGet, g ?? -1],
    [OP.i32Eqz, 0],
    [OP.if, -64],
    [OP.i32Const, 1],
    [OP.globalSet, g ?? -1],
    [OP.call, null],
    [OP.end, 0],
  ];
  return g !== fuel && matches(d, 0, prelude) ? prelude.length : 0;
}

/** Splits one body into regions; refuses a loop without a charge and a forbidden instruction. */
function walkBody(d: Decoded, fn: number, charge: Pattern, fuel: number, out: Bodies): Kind {
  const where = (i: number): string => `function ${fn}, byte ${d.ats[i]}`;
  const open = (i: number): number => {
    const c = matches(d, i, charge) ? d.imms[i + 1]! : null;
    if (c !== null && c < 1) fail(`the charge at ${where(i)} is ${c}, not positive`);
    out.regions.push({ fn, at: d.ats[i] ?? 0, charge: c, count: 0, calls: [] });
    return out.regions.length - 1;
  };
  const prelude = preludeLength(d, fuel);
  const top = open(prelude);
  const kind: Kind = out.regions[top]!.charge !== null ? 'charged' : 'uncharged';
  if (kind === 'uncharged') {
    if (prelude > 0) fail(`${where(0)} runs the deferred start without a charge`);
    out.topRegion.set(fn, top);
  } else if (prelude > 0) out.preludeCalls.push({ fn, callee: d.imms[5]! });
  const regions = [top];
  const loops: boolean[] = []; // per open block: is it a loop
  for (let i = kind === 'charged' ? prelude + CHARGE_LENGTH : 0; i < d.n; i++) {
    const region = out.regions[regions[regions.length - 1]!]!;
    const op = d.ops[i]!;
    region.count++;
    switch (op) {
      case OP.block:
      case OP.if:
        loops.push(false);
        break;
      case OP.loop: {
        loops.push(true);
        const inner = open(i + 1);
        if (out.regions[inner]!.charge === null) fail(`the loop at ${where(i)} does not begin with a charge`);
        regions.push(inner);
        i += CHARGE_LENGTH;
        break;
      }
      case OP.end:
        if (loops.length === 0) {
          if (i !== d.n - 1) fail(`${where(i)}: instructions after the function's end`);
          break;
        }
        if (loops.pop()) regions.pop();
        break;
      case OP.call:
        region.calls.push(d.imms[i]!);
        break;
      case OP.globalSet:
        if (d.imms[i] === fuel) fail(`${where(i)} sets the fuel outside a charge`);
        break;
      case OP.memoryGrow:
      case OP.memoryFill:
      case OP.memoryCopy:
      case OP.memoryInit:
        fail(`${where(i)} has a ${opName(op)} outside the instrumenter's metering helper`);
    }
  }
  if (d.n === 0 || d.ops[d.n - 1] !== OP.end || loops.length !== 0) fail(`function ${fn} has an unbalanced body`);
  return kind;
}

function opName(op: number): string {
  if (op === OP.memoryGrow) return 'memory.grow';
  if (op === OP.memoryFill) return 'memory.fill (unmetered)';
  if (op === OP.memoryCopy) return 'memory.copy (unmetered)';
  return 'memory.init (unmetered)';
}

/** Rules 2-4 once every body is read. */
function checkRegions(b: Bodies, entryPoints: Map<number, string>, funcImports: number): void {
  for (const [fn, how] of entryPoints) {
    if (fn < funcImports) continue; // a host function: the engine's own code
    if (b.kinds[fn] !== 'charged') fail(`function ${fn} is ${how} but does not begin with a charge`);
  }
  for (const { fn, callee } of b.preludeCalls)
    if (b.kinds[callee] !== 'charged')
      fail(`function ${fn}'s deferred start calls function ${callee}, which is not charged`);

  // Totals of uncharged functions, depth first without recursion (a call chain may be long).
  const totals = new Map<number, number>();
  const onPath = new Set<number>();
  const total = (root: number): number => {
    const stack: Array<{ fn: number; next: number; sum: number }> = [];
    const enter = (fn: number): void => {
      onPath.add(fn);
      stack.push({ fn, next: 0, sum: b.regions[b.topRegion.get(fn)!]!.count });
    };
    enter(root);
    for (;;) {
      const top = stack[stack.length - 1]!;
      const calls = b.regions[b.topRegion.get(top.fn)!]!.calls;
      if (top.next < calls.length) {
        const callee = calls[top.next]!;
        if (b.kinds[callee] !== 'uncharged') {
          top.next++;
          continue;
        }
        if (onPath.has(callee))
          fail(`function ${top.fn} calls function ${callee} recursively, and neither begins with a charge`);
        const known = totals.get(callee);
        if (known === undefined) {
          enter(callee);
          continue;
        }
        top.next++;
        top.sum += known;
        if (top.sum > MAX_UNCHARGED_TOTAL)
          fail(`function ${top.fn} runs more than ${MAX_UNCHARGED_TOTAL} instructions without a charge`);
        continue;
      }
      stack.pop();
      onPath.delete(top.fn);
      totals.set(top.fn, top.sum);
      const parent = stack[stack.length - 1];
      if (parent === undefined) return top.sum;
      // The parent's pending call is this one: counted on its next turn through `known`.
    }
  };
  for (const fn of b.topRegion.keys()) if (!totals.has(fn)) total(fn);

  for (const region of b.regions) {
    if (region.charge === null) continue;
    let n = region.count;
    for (const callee of region.calls) if (b.kinds[callee] === 'uncharged') n += totals.get(callee)!;
    const need = Math.ceil(n / INSTRUCTIONS_PER_FUEL);
    if (region.charge < need)
      fail(
        `the charge at function ${region.fn}, byte ${region.at} is ${region.charge}; its region runs up to ${n} instructions, which needs at least ${need}`,
      );
  }
}
