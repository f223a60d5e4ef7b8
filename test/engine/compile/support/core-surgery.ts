// Test helper: byte-level surgery on an instrumented core module, to make the modules a
// taken-over compile process could return (a charge removed, a helper made recursive, an extra
// import). Every rewrite keeps the module's framing valid (sizes re-encoded), so what the
// verifier refuses is the metering, not the format.
import { ByteReader } from '../../../../runtime/engine/component/byte-reader.ts';
import { concat, coreSections, encodeU32 } from '../../../../runtime/engine/instrument/core-sections.ts';
import { type Instruction, nextInstruction, OP } from '../../../../runtime/engine/verify/instructions.ts';

export { OP };

const leb = (n: number): Uint8Array => Uint8Array.from(encodeU32(n));

function section(id: number, payload: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(id), leb(payload.length), payload]);
}

/** Where a section goes among the known ones: the data count section (12) comes before the code. */
const ORDER = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11];

/** The module with section `id`'s payload replaced, or the section inserted where it belongs. */
export function withSection(core: Uint8Array, id: number, payload: Uint8Array): Uint8Array {
  const sections = coreSections(core);
  const existing = sections.find((s) => s.id === id);
  const after = sections.find((s) => s.id !== 0 && ORDER.indexOf(s.id) > ORDER.indexOf(id));
  const parts: Uint8Array[] = [core.subarray(0, 8)];
  for (const s of sections) {
    if (s === existing || (existing === undefined && s === after)) parts.push(section(id, payload));
    if (s !== existing) parts.push(core.subarray(s.start, s.end));
  }
  if (existing === undefined && after === undefined) parts.push(section(id, payload));
  return concat(parts);
}

export function sectionPayload(core: Uint8Array, id: number): Uint8Array {
  const s = coreSections(core).find((x) => x.id === id);
  if (s === undefined) throw new Error(`no section ${id}`);
  return core.subarray(s.payload, s.end);
}

/** Number of function imports. */
export function functionImports(core: Uint8Array): number {
  const s = coreSections(core).find((x) => x.id === 2);
  if (s === undefined) return 0;
  const r = new ByteReader(core, s.payload, s.end);
  let n = 0;
  for (let count = r.u32(); count > 0; count--) {
    r.name();
    r.name();
    const kind = r.byte();
    if (kind === 0) {
      r.u32();
      n++;
    } else if (kind === 2) {
      const flags = r.byte();
      r.u32();
      if (flags & 1) r.u32();
    } else throw new Error(`import kind ${kind}`);
  }
  return n;
}

export interface Body {
  /** Function index (imports first). */
  fn: number;
  /** Local declarations, as encoded. */
  locals: Uint8Array;
  code: Uint8Array;
  instructions: Array<{ op: number; imm: number; start: number; end: number }>;
}

export function bodies(core: Uint8Array): Body[] {
  const s = coreSections(core).find((x) => x.id === 10)!;
  const r = new ByteReader(core, s.payload, s.end);
  const imports = functionImports(core);
  const out: Body[] = [];
  for (let i = 0, n = r.u32(); i < n; i++) {
    const b = r.sub(r.u32());
    const start = b.pos;
    for (let g = b.u32(); g > 0; g--) {
      b.u32();
      b.byte();
    }
    const locals = core.slice(start, b.pos);
    const codeStart = b.pos;
    const instructions: Body['instructions'] = [];
    const ins: Instruction = { op: 0, imm: 0, at: 0 };
    while (!b.done) {
      nextInstruction(b, ins);
      instructions.push({ op: ins.op, imm: ins.imm, start: ins.at - codeStart, end: b.pos - codeStart });
    }
    out.push({ fn: imports + i, locals, code: core.slice(codeStart, b.end), instructions });
  }
  return out;
}

/** The module with the bodies `rewrite` returns new code (instructions, `end` included) for. */
export function rewriteBodies(core: Uint8Array, rewrite: (b: Body) => Uint8Array | undefined): Uint8Array {
  const all = bodies(core);
  const parts: Uint8Array[] = [leb(all.length)];
  for (const b of all) {
    const body = concat([b.locals, rewrite(b) ?? b.code]);
    parts.push(leb(body.length), body);
  }
  return withSection(core, 10, concat(parts));
}

/** `code` without instructions [from, from + count). */
export function withoutInstructions(b: Body, from: number, count: number): Uint8Array {
  const first = b.instructions[from]!;
  const last = b.instructions[from + count - 1]!;
  return concat([b.code.subarray(0, first.start), b.code.subarray(last.end)]);
}

/** `code` with instruction `index` replaced by `bytes`. */
export function replacingInstruction(b: Body, index: number, bytes: number[]): Uint8Array {
  const ins = b.instructions[index]!;
  return concat([b.code.subarray(0, ins.start), Uint8Array.from(bytes), b.code.subarray(ins.end)]);
}

/** Signed LEB128 of a small integer. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

export const u32 = (n: number): number[] => encodeU32(n);
