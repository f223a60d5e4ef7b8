// A decoder of function bodies for the features the instrumenter allows (MVP, mutable globals,
// sign-ext, non-trapping float-to-int, bulk memory, multivalue, SIMD): every opcode with its
// immediates, anything else refused. The verifier (verify-core.ts) reasons on this decoding, so
// it must split a body into instructions exactly as V8 does: an immediate mis-sized here would
// hide the instructions after it. What it accepts that V8 does not (an unassigned SIMD opcode,
// an index out of range) fails WebAssembly.compile afterwards; what V8 accepts and it does not
// is refused here. No instruction is guessed.
import type { ByteReader } from '../component/byte-reader.ts';

/** Opcodes with a prefix are `prefix << 16 | sub-opcode`. */
export const OP = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  brTable: 0x0e,
  return: 0x0f,
  call: 0x10,
  callIndirect: 0x11,
  localGet: 0x20,
  localSet: 0x21,
  globalGet: 0x23,
  globalSet: 0x24,
  memorySize: 0x3f,
  memoryGrow: 0x40,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32GtU: 0x4b,
  i64LtS: 0x53,
  i32Sub: 0x6b,
  i32ShrU: 0x76,
  i64Add: 0x7c,
  i64Sub: 0x7d,
  i64Shl: 0x86,
  i64ExtendI32U: 0xad,
  memoryInit: (0xfc << 16) | 8,
  memoryCopy: (0xfc << 16) | 10,
  memoryFill: (0xfc << 16) | 11,
} as const;

/** One decoded instruction: opcode, its first immediate (an index, a constant) and where it starts. */
export interface Instruction {
  op: number;
  /** The first immediate: index, label, constant (an i64 as a number: exact up to 2^53, sign kept); 0 when none. */
  imm: number;
  /** The block type of block/loop/if: -64 (0x40) for none. */
  at: number;
}

const EMPTY_BLOCK = -64; // 0x40 as s33
const VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b]); // i32 i64 f32 f64 v128

/** Signed LEB128 of at most `bits` bits, as a number (exact up to 2^53; beyond, the sign and magnitude order hold). */
function signed(r: ByteReader, bits: number): number {
  let result = 0;
  let shift = 0;
  const maxBytes = Math.ceil(bits / 7);
  for (let i = 0; i < maxBytes; i++) {
    const b = r.byte();
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return b & 0x40 ? result - 2 ** shift : result;
  }
  return r.fail(`signed LEB128 longer than ${maxBytes} bytes`);
}

function blockType(r: ByteReader): number {
  const b = r.peek();
  if (b === 0x40) {
    r.byte();
    return EMPTY_BLOCK;
  }
  if (VALTYPES.has(b)) return -(0x80 - r.byte());
  const index = signed(r, 33);
  if (index < 0) r.fail(`unsupported block type 0x${b.toString(16)}`);
  return index;
}

function memarg(r: ByteReader): void {
  const align = r.u32();
  // Bit 6 announces a memory index (multi-memory): not a feature a policy may use.
  if (align >= 64) r.fail(`unsupported memory alignment immediate ${align}`);
  r.u32();
}

function zeroByte(r: ByteReader, what: string): void {
  if (r.byte() !== 0) r.fail(`${what} names a memory other than 0`);
}

/** Thrown for an instruction outside the allowed features. */
export class UnsupportedInstruction extends Error {}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Decodes the next instruction of `r` into `out`. */
export function nextInstruction(r: ByteReader, out: Instruction): void {
  out.at = r.pos;
  out.imm = 0;
  const op = r.byte();
  out.op = op;
  if (op >= 0x45 && op <= 0xc4) return; // numeric, sign-ext: no immediate
  if (op >= 0x28 && op <= 0x3e) return memarg(r); // loads, stores
  switch (op) {
    case 0x00: // unreachable
    case 0x01: // nop
    case 0x05: // else
    case 0x0b: // end
    case 0x0f: // return
    case 0x1a: // drop
    case 0x1b: // select
      return;
    case 0x02:
    case 0x03:
    case 0x04:
      out.imm = blockType(r);
      return;
    case 0x0c:
    case 0x0d:
    case 0x10:
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24:
      out.imm = r.u32();
      return;
    case 0x0e: {
      for (let n = r.count('br_table target'); n > 0; n--) r.u32();
      out.imm = r.u32();
      return;
    }
    case 0x11:
      out.imm = r.u32(); // type index
      if (r.u32() !== 0) r.fail('call_indirect names a table other than 0');
      return;
    case 0x3f:
      return zeroByte(r, 'memory.size');
    case 0x40:
      return zeroByte(r, 'memory.grow');
    case 0x41:
      out.imm = signed(r, 32);
      return;
    case 0x42:
      out.imm = signed(r, 64);
      return;
    case 0x43:
      r.take(4);
      return;
    case 0x44:
      r.take(8);
      return;
    case 0xfc:
      return miscInstruction(r, out);
    case 0xfd:
      return simdInstruction(r, out);
  }
  throw new UnsupportedInstruction(`opcode ${hex(op)} (not MVP, bulk memory, sign-ext, sat float-to-int or SIMD)`);
}

function miscInstruction(r: ByteReader, out: Instruction): void {
  const sub = r.u32();
  out.op = (0xfc << 16) | sub;
  if (sub <= 7) return; // saturating float-to-int
  switch (sub) {
    case 8: // memory.init
      out.imm = r.u32();
      return zeroByte(r, 'memory.init');
    case 9: // data.drop
      out.imm = r.u32();
      return;
    case 10: // memory.copy
      zeroByte(r, 'memory.copy');
      return zeroByte(r, 'memory.copy');
    case 11: // memory.fill
      return zeroByte(r, 'memory.fill');
  }
  // table.init, elem.drop, table.copy: the instrumenter does not take them (their work is not
  // metered by size); table.grow/size/fill belong to reference types.
  throw new UnsupportedInstruction(`opcode 0xfc ${sub} (table operations, reference types or later)`);
}

function simdInstruction(r: ByteReader, out: Instruction): void {
  const sub = r.u32();
  out.op = (0xfd << 16) | sub;
  if (sub > 0xff) throw new UnsupportedInstruction(`SIMD opcode ${sub} (relaxed SIMD or later)`);
  if (sub <= 11 || sub === 92 || sub === 93) return memarg(r); // v128 loads, store, load*_zero
  if (sub === 12 || sub === 13) {
    r.take(16); // v128.const, i8x16.shuffle
    return;
  }
  if (sub >= 21 && sub <= 34) {
    r.byte(); // extract/replace lane
    return;
  }
  if (sub >= 84 && sub <= 91) {
    memarg(r); // load/store lane
    r.byte();
  }
  // Every other SIMD opcode has no immediate.
}
