// Typed access to the binaryen.js expression accessors that index.d.ts does not declare
// (binaryen.Block.getChildAt, binaryen.Loop.setBody, ...). Looked up once at load time:
// if a binaryen upgrade renamed one, the engine refuses to start instead of mis-instrumenting.
import binaryen from 'binaryen';

export type Ref = number;
type Get = (e: Ref) => Ref;
type Set = (e: Ref, child: Ref) => void;
type GetAt = (e: Ref, i: number) => Ref;
type SetAt = (e: Ref, i: number, child: Ref) => void;
type Count = (e: Ref) => number;

const lib = binaryen as unknown as Record<string, Record<string, unknown> | undefined>;

function accessor<T>(cls: string, method: string): T {
  const f = lib[cls]?.[method];
  if (typeof f !== 'function') throw new Error(`binaryen.js lacks ${cls}.${method}; the instrumenter needs it`);
  return f as T;
}

/** One child position of an expression: read it, and replace it. */
export interface ChildSlot {
  get(e: Ref): Ref;
  set(e: Ref, child: Ref): void;
}

function field(cls: string, name: string): ChildSlot {
  const get = accessor<Get>(cls, `get${name}`);
  const set = accessor<Set>(cls, `set${name}`);
  return { get: (e) => get(e), set: (e, c) => set(e, c) };
}

function listed(cls: string, count: string, item: string): (e: Ref) => ChildSlot[] {
  const n = accessor<Count>(cls, `getNum${count}`);
  const get = accessor<GetAt>(cls, `get${item}At`);
  const set = accessor<SetAt>(cls, `set${item}At`);
  return (e) =>
    Array.from({ length: n(e) }, (_, i) => ({ get: (x: Ref) => get(x, i), set: (x: Ref, c: Ref) => set(x, i, c) }));
}

function fixed(cls: string, ...names: string[]): (e: Ref) => ChildSlot[] {
  const slots = names.map((n) => field(cls, n));
  return () => slots;
}

const none = (): ChildSlot[] => [];

/**
 * Every expression kind the instrumenter accepts, with its children. This is the feature gate:
 * MVP + mutable globals, sign-ext, non-trapping float-to-int, bulk memory, multivalue, SIMD.
 * Any other kind (atomics, exceptions, GC, reference types, tail calls, ...) is refused.
 */
export const CHILDREN: ReadonlyMap<number, (e: Ref) => ChildSlot[]> = new Map<number, (e: Ref) => ChildSlot[]>([
  [binaryen.NopId, none],
  [binaryen.UnreachableId, none],
  [binaryen.ConstId, none],
  [binaryen.LocalGetId, none],
  [binaryen.GlobalGetId, none],
  [binaryen.MemorySizeId, none],
  [binaryen.DataDropId, none],
  [binaryen.BlockId, listed('Block', 'Children', 'Child')],
  [binaryen.IfId, fixed('If', 'Condition', 'IfTrue', 'IfFalse')],
  [binaryen.LoopId, fixed('Loop', 'Body')],
  [binaryen.BreakId, fixed('Break', 'Condition', 'Value')],
  [binaryen.SwitchId, fixed('Switch', 'Condition', 'Value')],
  [binaryen.CallId, listed('Call', 'Operands', 'Operand')],
  [
    binaryen.CallIndirectId,
    ((target, operands) => (e: Ref) => [...target(e), ...operands(e)])(
      fixed('CallIndirect', 'Target'),
      listed('CallIndirect', 'Operands', 'Operand'),
    ),
  ],
  [binaryen.LocalSetId, fixed('LocalSet', 'Value')],
  [binaryen.GlobalSetId, fixed('GlobalSet', 'Value')],
  [binaryen.LoadId, fixed('Load', 'Ptr')],
  [binaryen.StoreId, fixed('Store', 'Ptr', 'Value')],
  [binaryen.UnaryId, fixed('Unary', 'Value')],
  [binaryen.BinaryId, fixed('Binary', 'Left', 'Right')],
  [binaryen.SelectId, fixed('Select', 'IfTrue', 'IfFalse', 'Condition')],
  [binaryen.DropId, fixed('Drop', 'Value')],
  [binaryen.ReturnId, fixed('Return', 'Value')],
  [binaryen.MemoryGrowId, fixed('MemoryGrow', 'Delta')],
  [binaryen.MemoryInitId, fixed('MemoryInit', 'Dest', 'Offset', 'Size')],
  [binaryen.MemoryCopyId, fixed('MemoryCopy', 'Dest', 'Source', 'Size')],
  [binaryen.MemoryFillId, fixed('MemoryFill', 'Dest', 'Value', 'Size')],
  [binaryen.TupleMakeId, listed('TupleMake', 'Operands', 'Operand')],
  [binaryen.TupleExtractId, fixed('TupleExtract', 'Tuple')],
  [binaryen.SIMDExtractId, fixed('SIMDExtract', 'Vec')],
  [binaryen.SIMDReplaceId, fixed('SIMDReplace', 'Vec', 'Value')],
  [binaryen.SIMDShuffleId, fixed('SIMDShuffle', 'Left', 'Right')],
  [binaryen.SIMDTernaryId, fixed('SIMDTernary', 'A', 'B', 'C')],
  [binaryen.SIMDShiftId, fixed('SIMDShift', 'Vec', 'Shift')],
  [binaryen.SIMDLoadId, fixed('SIMDLoad', 'Ptr')],
  [binaryen.SIMDLoadStoreLaneId, fixed('SIMDLoadStoreLane', 'Ptr', 'Vec')],
]);

export const isTailCall = accessor<(e: Ref) => boolean>('Call', 'isReturn');
export const isTailCallIndirect = accessor<(e: Ref) => boolean>('CallIndirect', 'isReturn');
export const loopBody = field('Loop', 'Body');

/** Features the instrumented module may use (binaryen.Features bit set). */
export const ALLOWED_FEATURES: binaryen.Features =
  binaryen.Features.MutableGlobals |
  binaryen.Features.NontrappingFPToInt |
  binaryen.Features.SIMD128 |
  binaryen.Features.BulkMemory |
  binaryen.Features.BulkMemoryOpt |
  binaryen.Features.SignExt |
  binaryen.Features.Multivalue;

/** Human names for refusal messages. */
export function expressionKindName(id: number): string {
  for (const [k, v] of Object.entries(binaryen))
    if (k.endsWith('Id') && v === id && !k.startsWith('_')) return k.slice(0, -2);
  return `expression #${id}`;
}

export const setFunctionBody = accessor<(fn: binaryen.FunctionRef, body: Ref) => void>('Function', 'setBody');
export const memoryGrowDelta = field('MemoryGrow', 'Delta');
