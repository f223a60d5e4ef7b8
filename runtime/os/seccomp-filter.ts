// A seccomp filter from a list of refused system calls: a deny-list, each call refused with an
// errno, some only for some arguments (the flags of openat, the pid of kill). The program checks
// the caller's ABI first and kills a process that calls through another one (i386's int 0x80,
// x32): a number means another call there, so a filter written for one ABI says nothing of it.
// Arguments are tested on their low 32 bits where the kernel reads an int (flags, pids, ioctl
// requests): the upper half of the register is ignored by the call too. Pointers are tested whole.
import { BpfProgram } from './bpf-program.ts';
import { EACCES, EINVAL, ENOSYS, EPERM, errnoName } from './errno.ts';
import { libc } from './libc.ts';
import type { SyscallArch } from './syscall-numbers.ts';

/** A test of one argument of the call (arg 0..5). */
export type ArgTest =
  /** The low 32 bits are one of these. */
  | { arg: number; in: readonly number[] }
  /** The low 32 bits are none of these. */
  | { arg: number; notIn: readonly number[] }
  /** The low 32 bits have none of these bits. */
  | { arg: number; noneOf: number }
  /** The low 32 bits have at least one of these bits. */
  | { arg: number; anyOf: number }
  /** All 64 bits are zero (a null pointer). */
  | { arg: number; zero: true };

export interface SyscallRule {
  syscall: string;
  /** The call goes through only when every test holds; without tests it never does. */
  allowWhen?: readonly ArgTest[];
  /** The errno it fails with when refused (default EPERM). */
  errno?: number;
}

// struct seccomp_data (linux/seccomp.h): int nr; u32 arch; u64 instruction_pointer; u64 args[6].
const NR = 0;
const ARCH = 4;
const ARG_LOW = (i: number): number => 16 + 8 * i; // little-endian: the low word comes first
const ARG_HIGH = (i: number): number => 16 + 8 * i + 4;

export const SECCOMP_RET_KILL_PROCESS = 0x8000_0000;
export const SECCOMP_RET_ERRNO = 0x0005_0000;
export const SECCOMP_RET_ALLOW = 0x7fff_0000;
const SECCOMP_SET_MODE_FILTER = 1;
/** Every thread of the process gets the filter, atomically, or none does. */
const SECCOMP_FILTER_FLAG_TSYNC = 1;

/** The filter program (struct sock_filter[]) for `arch`; rules for calls `arch` lacks are left out. */
export function syscallFilter(arch: SyscallArch, rules: readonly SyscallRule[]): Buffer {
  if (!['x64', 'arm64'].includes(arch.name)) throw new Error(`no seccomp filter layout for ${arch.name}`);
  const p = new BpfProgram();
  const nativeAbi = p.label('native-abi');
  p.load(ARCH).jumpIfEqual(arch.auditArch, nativeAbi, 0).ret(SECCOMP_RET_KILL_PROCESS).place(nativeAbi);
  p.load(NR);
  if (arch.x32Bit !== undefined) {
    const notX32 = p.label('not-x32');
    p.jumpIfAtLeast(arch.x32Bit, 0, notX32).ret(SECCOMP_RET_KILL_PROCESS).place(notX32);
  }
  for (const rule of rules) {
    const nr = arch.numbers[rule.syscall];
    if (nr === undefined) continue;
    const next = p.label(`after-${rule.syscall}`);
    const deny = p.label(`deny-${rule.syscall}`);
    p.jumpIfEqual(nr, 0, next);
    for (const test of rule.allowWhen ?? []) argTest(p, test, deny);
    if ((rule.allowWhen ?? []).length > 0) p.ret(SECCOMP_RET_ALLOW);
    p.place(deny).ret(SECCOMP_RET_ERRNO | (rule.errno ?? EPERM));
    // The next rule compares the number again: A holds it unless an argument was loaded, and
    // every path through an argument test ends in a return.
    p.place(next);
  }
  p.ret(SECCOMP_RET_ALLOW);
  return p.assemble();
}

/** Code that falls through when `t` holds and jumps to `deny` when it does not. */
function argTest(p: BpfProgram, t: ArgTest, deny: string): void {
  if (t.arg < 0 || t.arg > 5 || !Number.isInteger(t.arg)) throw new Error(`no system call argument ${t.arg}`);
  p.load(ARG_LOW(t.arg));
  if ('in' in t) {
    const pass = p.label('pass');
    for (const v of t.in) p.jumpIfEqual(v, pass, 0);
    p.jump(deny).place(pass);
  } else if ('notIn' in t) {
    for (const v of t.notIn) p.jumpIfEqual(v, deny, 0);
  } else if ('noneOf' in t) {
    p.jumpIfAnyBit(t.noneOf, deny, 0);
  } else if ('anyOf' in t) {
    p.jumpIfAnyBit(t.anyOf, 0, deny);
  } else {
    p.jumpIfEqual(0, 0, deny).load(ARG_HIGH(t.arg)).jumpIfEqual(0, 0, deny);
  }
}

/**
 * Installs `program` on every thread of this process (SECCOMP_FILTER_FLAG_TSYNC). Needs
 * no_new_privs (or CAP_SYS_ADMIN). Filters stack: one can never be removed, only added to.
 * On failure, says why and what to look at.
 */
export function installSyscallFilter(arch: SyscallArch, program: Buffer): { ok: true } | { ok: false; why: string } {
  const nr = arch.numbers.seccomp;
  if (nr === undefined) return { ok: false, why: `no seccomp system call number for ${arch.name}` };
  const r = libc().seccomp(nr, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, program);
  if (r.ok && r.value === 0) return { ok: true };
  if (r.ok) return { ok: false, why: `thread ${r.value} could not take the filter (SECCOMP_FILTER_FLAG_TSYNC)` };
  const hint: Record<number, string> = {
    [EINVAL]: 'the kernel lacks seccomp filters (CONFIG_SECCOMP_FILTER) or refused the program',
    [ENOSYS]: 'the kernel has no seccomp(2) (CONFIG_SECCOMP), or a filter above this process refuses it',
    [EACCES]: 'no_new_privs is not set',
    [EPERM]:
      'a seccomp filter above this process refuses seccomp(2) (a systemd SystemCallFilter= without seccomp, a container profile)',
  };
  const why = hint[r.errno];
  return {
    ok: false,
    why: `seccomp(SECCOMP_SET_MODE_FILTER) failed with ${errnoName(r.errno)}${why !== undefined ? `: ${why}` : ''}`,
  };
}
