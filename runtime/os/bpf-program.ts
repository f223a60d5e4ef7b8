// A classic BPF program (the language seccomp filters are written in), assembled from
// instructions whose conditional jumps name labels: the kernel's format wants forward offsets
// that fit in 8 bits, which this resolves and checks.

/** struct sock_filter: u16 code, u8 jt, u8 jf, u32 k (8 bytes, native endianness). */
export const BPF_INSTRUCTION_BYTES = 8;

// Opcodes (linux/bpf_common.h), combined as the kernel's BPF_STMT/BPF_JUMP macros do.
const BPF_LD_W_ABS = 0x00 | 0x00 | 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JMP_JA = 0x05 | 0x00;
const BPF_JMP_JEQ_K = 0x05 | 0x10;
const BPF_JMP_JGE_K = 0x05 | 0x30;
const BPF_JMP_JSET_K = 0x05 | 0x40;
const BPF_RET_K = 0x06;

/** A jump target: the next instruction (0 = fall through) or a label placed later. */
export type Target = string | 0;

type Instruction = { kind: 'label'; name: string } | { kind: 'insn'; code: number; k: number; jt: Target; jf: Target };

export class BpfProgram {
  readonly #items: Instruction[] = [];
  #labels = 0;

  /** A label name unique to this program. */
  label(hint: string): string {
    return `${hint}#${this.#labels++}`;
  }

  place(name: string): this {
    this.#items.push({ kind: 'label', name });
    return this;
  }

  /** A = the 32-bit word at `offset` of the input (seccomp_data). */
  load(offset: number): this {
    return this.#insn(BPF_LD_W_ABS, offset);
  }

  jumpIfEqual(k: number, jt: Target, jf: Target): this {
    return this.#insn(BPF_JMP_JEQ_K, k, jt, jf);
  }

  /** Unsigned A >= k. */
  jumpIfAtLeast(k: number, jt: Target, jf: Target): this {
    return this.#insn(BPF_JMP_JGE_K, k, jt, jf);
  }

  /** A & k != 0. */
  jumpIfAnyBit(k: number, jt: Target, jf: Target): this {
    return this.#insn(BPF_JMP_JSET_K, k, jt, jf);
  }

  /** Unconditional jump (32-bit offset: any distance). */
  jump(to: string): this {
    this.#items.push({ kind: 'insn', code: BPF_JMP_JA, k: 0, jt: to, jf: 0 });
    return this;
  }

  ret(k: number): this {
    return this.#insn(BPF_RET_K, k);
  }

  #insn(code: number, k: number, jt: Target = 0, jf: Target = 0): this {
    this.#items.push({ kind: 'insn', code, k: k >>> 0, jt, jf });
    return this;
  }

  /** The program as struct sock_filter[]; throws on a label never placed or a jump too far. */
  assemble(): Buffer {
    const at = new Map<string, number>();
    const insns: Array<Instruction & { kind: 'insn' }> = [];
    for (const item of this.#items) {
      if (item.kind === 'label') at.set(item.name, insns.length);
      else insns.push(item);
    }
    if (insns.length > 4096)
      throw new Error(`a BPF program has at most 4096 instructions (BPF_MAXINSNS), not ${insns.length}`);
    const offset = (from: number, target: Target, limit: number): number => {
      if (target === 0) return 0;
      const to = at.get(target);
      if (to === undefined) throw new Error(`BPF label ${target} is never placed`);
      const d = to - from - 1;
      if (d < 0 || d > limit) throw new Error(`BPF jump from ${from} to ${target} (${d}) is out of range`);
      return d;
    };
    const out = Buffer.alloc(insns.length * BPF_INSTRUCTION_BYTES);
    const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    insns.forEach((insn, i) => {
      const base = i * BPF_INSTRUCTION_BYTES;
      const ja = insn.code === BPF_JMP_JA;
      const k = ja ? offset(i, insn.jt, 0xffff_ffff) : insn.k;
      if (le) {
        out.writeUInt16LE(insn.code, base);
        out.writeUInt32LE(k, base + 4);
      } else {
        out.writeUInt16BE(insn.code, base);
        out.writeUInt32BE(k, base + 4);
      }
      out.writeUInt8(ja ? 0 : offset(i, insn.jt, 0xff), base + 2);
      out.writeUInt8(ja ? 0 : offset(i, insn.jf, 0xff), base + 3);
    });
    return out;
  }
}
