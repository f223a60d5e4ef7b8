// The raw libc calls capgate needs, bound through koffi (FFI) on first use.
// koffi is loaded lazily and synchronously (createRequire) so that importing this module on a
// platform without it (the simulator on a laptop) costs nothing, while wasm host imports —
// which are synchronous — can still call straight through.
import { createRequire } from 'node:module';

/** A syscall outcome: the non-negative return value, or the errno it failed with. */
export type SyscallResult = { ok: true; value: number } | { ok: false; errno: number };

export interface RlimitValue {
  soft: bigint;
  hard: bigint;
}

/** Linux x86_64/aarch64 constants (asm-generic numbering where it matters). */
export const RLIMIT_FSIZE = 1;
export const RLIMIT_CORE = 4;
export const RLIMIT_NOFILE = 7;
export const RLIMIT_MEMLOCK = 8;
export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;
export const SO_PEERPIDFD = 77;
/** pidfd syscalls share one number on every architecture (added after the unification). */
export const SYS_PIDFD_SEND_SIGNAL = 424;
export const SYS_PIDFD_OPEN = 434;
/** Landlock's three calls, numbered after the unification too (x86_64 and aarch64 alike). */
export const SYS_LANDLOCK_CREATE_RULESET = 444;
export const SYS_LANDLOCK_ADD_RULE = 445;
export const SYS_LANDLOCK_RESTRICT_SELF = 446;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
/** clock_gettime(2): the calling thread's CPU time. */
export const CLOCK_THREAD_CPUTIME_ID = 3;
/** setpriority(2): `who` is a process id, which Linux reads as a thread id (nice is per thread). */
export const PRIO_PROCESS = 0;

export interface Libc {
  prlimit(
    pid: number,
    resource: number,
    next: RlimitValue | null,
  ): { ok: true; old: RlimitValue } | { ok: false; errno: number };
  /** prlimit(2) that sets soft and hard and reads nothing back: 0, or the errno (no object, no bigint made). */
  setRlimit(pid: number, resource: number, soft: bigint, hard: bigint): number;
  pidfdOpen(pid: number): SyscallResult;
  /** Signal 0: checks that the process behind the pidfd is still alive, sends nothing. */
  pidfdSendSignal0(pidfd: number): SyscallResult;
  /** getsockopt into a caller-sized buffer; returns the number of bytes the kernel wrote. */
  getsockopt(fd: number, level: number, option: number, out: Buffer): SyscallResult;
  close(fd: number): SyscallResult;
  /** flock(2): advisory whole-file lock, released by the kernel when the last fd to it closes. */
  flock(fd: number, operation: number): SyscallResult;
  /**
   * mmap(2) of `length` bytes of `fd` from offset 0, shared and read-write: stores reach the
   * file's pages in the page cache, which outlive the process. The ArrayBuffer is valid until
   * munmap(address): the caller must drop every view of it first.
   */
  mmapShared(
    fd: number,
    length: number,
  ): { ok: true; memory: ArrayBuffer; address: bigint } | { ok: false; errno: number };
  munmap(address: bigint, length: number): SyscallResult;
  /** clock_gettime(2) of `clock` (e.g. CLOCK_THREAD_CPUTIME_ID), in milliseconds; NaN if it fails. */
  clockMs(clock: number): number;
  /** setpriority(2) of PRIO_PROCESS `who` (on Linux, one thread): its nice value. */
  setNice(who: number, nice: number): SyscallResult;
  /**
   * sched_setscheduler(2) of thread `tid` (0: the calling one) to a policy of the fair class
   * (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE), whose static priority is 0; its nice value is kept.
   */
  setSchedulingPolicy(tid: number, policy: number): SyscallResult;
  /** prctl(2) PR_SET_NAME: the calling thread's name (at most 15 bytes are kept). */
  setThreadName(name: string): SyscallResult;
  /** prctl(2) with integer arguments (PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT...). */
  prctl(option: number, arg2: number, arg3?: number, arg4?: number, arg5?: number): SyscallResult;
  /** capset(2) of this thread to no capability at all: effective, permitted and inheritable. */
  clearCapabilities(): SyscallResult;
  /** fcntl(2) with an integer argument (F_GETFD, F_SETFD...). */
  fcntl(fd: number, command: number, arg: number): SyscallResult;
  /** execve(2): returns only when it failed. */
  execve(path: string, argv: readonly string[], env: readonly string[]): SyscallResult;
  /** seccomp(2) `operation` with a classic BPF `program` (struct sock_filter[]); `nr`: its number here. */
  seccomp(nr: number, operation: number, flags: number, program: Buffer): SyscallResult;
  /** landlock_create_ruleset(2): `attr` (struct landlock_ruleset_attr, `attr.length` bytes) or null (a query). */
  landlockCreateRuleset(attr: Buffer | null, flags: number): SyscallResult;
  /** landlock_add_rule(2) of `type` with its attribute struct's bytes. */
  landlockAddRule(rulesetFd: number, type: number, attr: Buffer): SyscallResult;
  /** landlock_restrict_self(2). */
  landlockRestrictSelf(rulesetFd: number, flags: number): SyscallResult;
}

/** Thrown (only) when the FFI layer cannot be loaded at all: the platform lacks what we need. */
export class LibcUnavailableError extends Error {
  override readonly name = 'LibcUnavailableError';
}

// The subset of koffi's API used here, typed at this one edge.
type KoffiFunction = (...args: unknown[]) => unknown;
interface KoffiLibrary {
  func(prototype: string): KoffiFunction;
  func(name: string, result: string, parameters: unknown[]): KoffiFunction;
}
interface KoffiModule {
  load(path: string): KoffiLibrary;
  struct(def: Record<string, string>): unknown;
  pointer(type: unknown): unknown;
  errno(): number;
  view(pointer: unknown, length: number): ArrayBuffer;
  address(pointer: unknown): bigint;
}

let cached: Libc | LibcUnavailableError | undefined;

/** `v`, checked: a typed array would wrap what writeBigUInt64LE refused. */
function u64(v: bigint): bigint {
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new RangeError(`rlimit value ${v} is not a u64`);
  return v;
}

/** The bound libc; throws LibcUnavailableError (with what to do) when it cannot be bound. */
export function libc(): Libc {
  if (cached === undefined) cached = bind();
  if (cached instanceof LibcUnavailableError) throw cached;
  return cached;
}

function bind(): Libc | LibcUnavailableError {
  if (process.platform !== 'linux') {
    return new LibcUnavailableError(
      `capgate's real capabilities need Linux (prlimit, pidfd, SO_PEERCRED); this is ${process.platform}. ` +
        'Use the simulator (capgate test) on this platform.',
    );
  }
  let koffi: KoffiModule;
  try {
    koffi = createRequire(import.meta.url)('koffi') as KoffiModule;
  } catch (e) {
    return new LibcUnavailableError(
      `cannot load the koffi FFI module (${String(e)}); run \`npm install\` so its native binary is present.`,
    );
  }
  let lib: KoffiLibrary;
  try {
    lib = koffi.load('libc.so.6');
  } catch (e) {
    return new LibcUnavailableError(`cannot load libc.so.6 (${String(e)}); capgate needs a glibc-based Linux host.`);
  }
  // rlim_t is unsigned 64-bit on every 64-bit Linux ABI: struct rlimit is two u64.
  // The rlimits travel in two preallocated 16-byte buffers (rlim_cur, rlim_max as u64): koffi
  // passes a Buffer as a plain pointer, where a struct object is converted field by field (this
  // call is on the decision path, twice per set-memlock: the value before, then the new one).
  const prlimit = lib.func('int prlimit(int pid, int resource, void *new_limit, void *old_limit)');
  const newLimit = Buffer.alloc(16);
  const oldLimit = Buffer.alloc(16);
  // The same bytes as native u64s (struct rlimit's layout): read and written without the
  // intermediate bigints of read/writeBigUInt64LE (their buffers are not pooled: offset 0).
  const newLimit64 = new BigUint64Array(newLimit.buffer, newLimit.byteOffset, 2);
  const oldLimit64 = new BigUint64Array(oldLimit.buffer, oldLimit.byteOffset, 2);
  // syscall(2) is variadic, but koffi parses a variadic call's type strings on every call (~0.5 µs
  // here). Fixed prototypes per syscall are ABI-identical on the Linux ABIs capgate runs on:
  // x86_64 SysV and AAPCS64 pass variadic integer/pointer arguments in the same registers as
  // named ones, and glibc's syscall() is an assembly shim that only moves integer registers. All
  // arguments are declared 64-bit, so no register carries undefined upper bits; the kernel's
  // SYSCALL_DEFINE wrappers narrow them to the syscall's int/unsigned int types.
  const syscallPidfdOpen = lib.func('long syscall(long number, long pid, long flags)');
  const syscallPidfdSendSignal = lib.func('long syscall(long number, long pidfd, long sig, void *info, long flags)');
  const getsockopt = lib.func('int getsockopt(int fd, int level, int optname, void *optval, uint32_t *optlen)');
  const close = lib.func('int close(int fd)');
  const flock = lib.func('int flock(int fd, int operation)');
  const mmap = lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
  // By address (an integer): a mapping can be unmapped by a thread that never held its pointer.
  const munmap = lib.func('int munmap(uintptr_t addr, size_t length)');
  const clockGettime = lib.func('int clock_gettime(int clock, void *ts)');
  // struct timespec is two 64-bit fields (tv_sec, tv_nsec) on the 64-bit Linux ABIs; one buffer
  // per thread (this module is loaded once per isolate), read without allocating: as u32 halves,
  // low first (x86_64 and AAPCS64 are little-endian), where a BigInt64Array made two bigints a read.
  const timespec = new Uint32Array(4);
  const U32 = 4_294_967_296;
  const setpriority = lib.func('int setpriority(int which, uint32_t who, int prio)');
  // The policy is a register argument (so systemd's RestrictRealtime= filter can read it, which
  // it cannot in sched_setattr's struct); the fair class's static priority is 0.
  const schedSetscheduler = lib.func('int sched_setscheduler(int pid, int policy, const int *param)');
  const zeroPriority = new Int32Array(1);
  // prctl(2) is variadic too; PR_SET_NAME takes one pointer.
  const prctlName = lib.func('int prctl(int option, const char *name)');
  const PR_SET_NAME = 15;
  const prctl = lib.func(
    'int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)',
  );
  // struct __user_cap_header_struct {u32 version; int pid} and, for version 3, two
  // struct __user_cap_data_struct {u32 effective, permitted, inheritable} (capabilities 0-31, 32-63).
  const capset = lib.func('int capset(void *header, void *data)');
  const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
  const fcntl = lib.func('int fcntl(int fd, int command, int arg)');
  const execve = lib.func('int execve(const char *path, const char **argv, const char **envp)');
  // struct sock_fprog {unsigned short len; struct sock_filter *filter}: koffi passes the Buffer
  // as the pointer. Anonymous: a named type is registered once per isolate, and this module may
  // be loaded twice in one (sources and dist/ in a test).
  const sockFprog = koffi.struct({ len: 'uint16_t', filter: 'void *' });
  const seccompSyscall = lib.func('syscall', 'long', ['long', 'long', 'long', koffi.pointer(sockFprog)]);
  const landlockCreateRuleset = lib.func('long syscall(long number, void *attr, long size, long flags)');
  const landlockAddRule = lib.func('long syscall(long number, long fd, long type, void *attr, long flags)');
  const landlockRestrictSelf = lib.func('long syscall(long number, long fd, long flags)');
  const PROT_READ_WRITE = 0x1 | 0x2;
  const MAP_SHARED = 0x1;
  const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

  const result = (rc: unknown): SyscallResult => {
    const n = Number(rc);
    return n < 0 ? { ok: false, errno: koffi.errno() } : { ok: true, value: n };
  };

  return {
    prlimit(pid, resource, next) {
      if (next !== null) {
        newLimit64[0] = u64(next.soft);
        newLimit64[1] = u64(next.hard);
      }
      const rc = Number(prlimit(pid, resource, next === null ? null : newLimit, oldLimit));
      if (rc < 0) return { ok: false, errno: koffi.errno() };
      return { ok: true, old: { soft: oldLimit64[0]!, hard: oldLimit64[1]! } };
    },
    setRlimit(pid, resource, soft, hard) {
      newLimit64[0] = u64(soft);
      newLimit64[1] = u64(hard);
      return Number(prlimit(pid, resource, newLimit, null)) < 0 ? koffi.errno() : 0;
    },
    pidfdOpen(pid) {
      return result(syscallPidfdOpen(SYS_PIDFD_OPEN, pid, 0));
    },
    pidfdSendSignal0(pidfd) {
      return result(syscallPidfdSendSignal(SYS_PIDFD_SEND_SIGNAL, pidfd, 0, null, 0));
    },
    getsockopt(fd, level, option, out) {
      const len = new Uint32Array([out.length]);
      const rc = Number(getsockopt(fd, level, option, out, len));
      if (rc < 0) return { ok: false, errno: koffi.errno() };
      return { ok: true, value: len[0] ?? 0 };
    },
    flock(fd, operation) {
      return result(flock(fd, operation));
    },
    close(fd) {
      return result(close(fd));
    },
    mmapShared(fd, length) {
      const pointer = mmap(null, length, PROT_READ_WRITE, MAP_SHARED, fd, 0);
      const address = pointer === null ? MAP_FAILED : koffi.address(pointer);
      if (address === MAP_FAILED || address === 0n) return { ok: false, errno: koffi.errno() };
      return { ok: true, memory: koffi.view(pointer, length), address };
    },
    munmap(address, length) {
      return result(munmap(address, length));
    },
    clockMs(clock) {
      if (Number(clockGettime(clock, timespec)) < 0) return Number.NaN;
      return (timespec[0]! + timespec[1]! * U32) * 1000 + (timespec[2]! + timespec[3]! * U32) / 1e6;
    },
    setNice(who, nice) {
      return result(setpriority(PRIO_PROCESS, who, nice));
    },
    setSchedulingPolicy(tid, policy) {
      return result(schedSetscheduler(tid, policy, zeroPriority));
    },
    setThreadName(name) {
      return result(prctlName(PR_SET_NAME, name));
    },
    prctl(option, arg2, arg3 = 0, arg4 = 0, arg5 = 0) {
      return result(prctl(option, arg2, arg3, arg4, arg5));
    },
    clearCapabilities() {
      const header = Buffer.alloc(8);
      header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0); // pid 0: this thread
      return result(capset(header, Buffer.alloc(24)));
    },
    fcntl(fd, command, arg) {
      return result(fcntl(fd, command, arg));
    },
    execve(path, argv, env) {
      // NULL-terminated arrays of C strings.
      return result(execve(path, [...argv, null], [...env, null]));
    },
    seccomp(nr, operation, flags, program) {
      return result(seccompSyscall(nr, operation, flags, { len: program.length / 8, filter: program }));
    },
    landlockCreateRuleset(attr, flags) {
      return result(landlockCreateRuleset(SYS_LANDLOCK_CREATE_RULESET, attr, attr?.length ?? 0, flags));
    },
    landlockAddRule(rulesetFd, type, attr) {
      return result(landlockAddRule(SYS_LANDLOCK_ADD_RULE, rulesetFd, type, attr, 0));
    },
    landlockRestrictSelf(rulesetFd, flags) {
      return result(landlockRestrictSelf(SYS_LANDLOCK_RESTRICT_SELF, rulesetFd, flags));
    },
  };
}
