// The compile process's sandbox: what it gives up before it reads the first untrusted byte. The
// bytes it compiles are a policy uploaded over the admin channel or shipped by a fleet bundle,
// and the daemon runs as root: a bug in V8's WebAssembly decoder or compilers (or in our own
// validation) that such a module exploits would run with what the process holds. It holds:
// - no capability, on any thread, and no_new_privs: the launcher that starts it re-executed
//   itself without them (launcher-launch.ts), and a process inherits both;
// - a seccomp filter on every thread that refuses, with EPERM, what a compiler never needs:
//   starting programs and processes, sockets, signalling or tracing other processes, changing
//   their priorities or limits, opening a file for writing, changing the file tree, mounts,
//   namespaces, io_uring (whose requests no filter sees), kernel modules, keyrings, BPF...;
// - RLIMIT_FSIZE 0 (no file grows), RLIMIT_CORE 0, RLIMIT_NOFILE 64;
// - SCHED_IDLE on every thread, from the launcher (compile-main.ts): the filter refuses every
//   sched_* and priority call, so it stays there (going back would need privilege anyway);
// - no descriptor but its stdio, its IPC channel and those Node opened itself;
// - two Landlock domains (os/landlock.ts). It stays uid 0 (another uid needs CAP_SETUID in the
//   daemon), and uid 0 without CAP_DAC_OVERRIDE still owns root's files. The launcher's first
//   image enters a domain that reads only launcherReadRules() (node, its libraries, /proc, the
//   cgroup tree, the package) before it re-executes, so every thread of the launcher and of its
//   compile processes is in it; once its pipeline is loaded the compile process enters one that
//   reads nothing at all (applyCompileSandbox; before Linux 7.0 only on the thread that runs
//   the pipeline and those it starts: the others keep the launcher's).
// Where the kernel has no Landlock (before 5.13, not in lsm=, refused by a seccomp filter above
// the daemon) compiles still run, and the daemon warns at start: the filter and the lack of
// capabilities remain, what the process could read it could say only to the daemon (which
// trusts nothing it says beyond a compiled module it validates again), and refusing every
// upload on such kernels would cost more than that.
//
// A deny-list rather than an allow-list: Node 20 and 24 (their libuv, V8, glibc's choices) make
// different system calls, and one an allow-list missed fails a good compile at random on the
// other line. Every call that can reach outside the process is on the list; what remains acts
// on the process itself. Refusals are EPERM, not a kill: a denied call a Node line makes on a
// path we did not exercise fails like one the kernel refused, and a good compile survives;
// an exploit gets nothing more from an errno than from a kill. Two calls fail with ENOSYS so that
// glibc falls back to one the filter can read: clone3 (its flags are in memory: pthread_create
// then uses clone, whose flags are a register) and openat2 (openat).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { PACKAGE_ROOT, RUNNING_COMPILED } from '../../bootstrap/package-root.ts';
import { closeInheritedFds, openFds, type OpenFd } from '../../os/inherited-fds.ts';
import { landlockSupport, restrictSelf, type LandlockSupport, type PathRule } from '../../os/landlock.ts';
import { EPERM, ENOSYS } from '../../os/errno.ts';
import { RLIMIT_CORE, RLIMIT_FSIZE, RLIMIT_NOFILE } from '../../os/libc.ts';
import { lowerOwnLimit } from '../../os/own-limits.ts';
import { dropPrivilegesOfThisThread, execWithoutPrivileges } from '../../os/privileges.ts';
import { installSyscallFilter, syscallFilter, type SyscallRule } from '../../os/seccomp-filter.ts';
import { syscallArch } from '../../os/syscall-numbers.ts';
import { holdsCapabilities, processThreadCredentials, unconfinedThread } from '../../os/thread-credentials.ts';
import type { LandlockReport, SandboxReport } from './compile-protocol.ts';

/** Open flags that write, create or truncate (same on x86_64 and aarch64). O_TMPFILE needs a write mode. */
const WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000; // O_WRONLY | O_RDWR | O_CREAT | O_TRUNC
const CLONE_THREAD = 0x10000;
/** ioctl requests that act beyond the descriptor: typing into the controlling terminal. */
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
/** fcntl commands that make the kernel signal another process on I/O (F_SETOWN, F_SETSIG, F_SETOWN_EX). */
const FCNTL_SIGNALS = [8, 10, 15];
/** The process's own descriptors: Node's few, a Worker's, what the pipeline opens to read itself. */
export const COMPILE_NOFILE = 64n;

const never = (...names: string[]): SyscallRule[] => names.map((syscall) => ({ syscall }));

/** The calls the compile process is refused; `pid` is its own (signals to itself still work). */
export function compileSandboxRules(pid: number): SyscallRule[] {
  const self = [pid];
  const rules: SyscallRule[] = [
    // Programs and processes. Threads still start: clone with CLONE_THREAD.
    ...never('execve', 'execveat', 'fork', 'vfork'),
    { syscall: 'clone', allowWhen: [{ arg: 0, anyOf: CLONE_THREAD }] },
    { syscall: 'clone3', errno: ENOSYS },
    // Unix socket pairs too (the channel is already open).
    ...never('socketpair'),
    // Other processes: signals, descriptors, priorities, limits.
    ...never('pidfd_open', 'pidfd_send_signal', 'tkill'),
    { syscall: 'kill', allowWhen: [{ arg: 0, in: self }] },
    { syscall: 'tgkill', allowWhen: [{ arg: 0, in: self }] },
    { syscall: 'rt_sigqueueinfo', allowWhen: [{ arg: 0, in: self }] },
    { syscall: 'rt_tgsigqueueinfo', allowWhen: [{ arg: 0, in: self }] },
    ...never('setpriority', 'ioprio_set', 'sched_setaffinity', 'sched_setscheduler', 'sched_setparam'),
    ...never('sched_setattr', 'move_pages', 'migrate_pages', 'setrlimit'),
    // Reading its own limits stays (glibc's getrlimit is prlimit64 with no new value).
    {
      syscall: 'prlimit64',
      allowWhen: [
        { arg: 0, in: [0, pid] },
        { arg: 2, zero: true },
      ],
    },
    ...confinedRules(),
  ];
  return rules.map((r) => ({ errno: EPERM, ...r }));
}

/**
 * The calls the compile launcher is refused. It starts processes and kills them, so it keeps
 * execve, fork and clone, socket pairs (libuv's stdio pipes), signals, priorities and limits
 * (its compile processes inherit this filter, and lower their own before they add theirs);
 * everything else that reaches outside the process goes, as for a compile process: a launcher
 * taken over through what a compile process sent it connects to no socket (the daemon's admin
 * socket is root's, as it is) and writes no file.
 */
export function launcherSandboxRules(): SyscallRule[] {
  return [...never('execveat'), ...confinedRules()].map((r) => ({ errno: EPERM, ...r }));
}

/** What neither the compile process nor its launcher may do. */
function confinedRules(): SyscallRule[] {
  return [
    // The network, and Unix sockets (the daemon's included).
    ...never('socket', 'connect', 'bind', 'listen', 'accept', 'accept4'),
    // Other processes: tracing, memory, descriptors.
    ...never('ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'process_mrelease', 'kcmp'),
    ...never('pidfd_getfd'),
    { syscall: 'fcntl', allowWhen: [{ arg: 1, notIn: FCNTL_SIGNALS }] },
    // Files: nothing is opened for writing, created, removed, renamed, linked or changed.
    { syscall: 'open', allowWhen: [{ arg: 1, noneOf: WRITE_FLAGS }] },
    { syscall: 'openat', allowWhen: [{ arg: 2, noneOf: WRITE_FLAGS }] },
    { syscall: 'openat2', errno: ENOSYS },
    ...never('creat', 'open_by_handle_at', 'name_to_handle_at', 'truncate', 'ftruncate', 'fallocate'),
    ...never('unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'rmdir'),
    ...never('link', 'linkat', 'symlink', 'symlinkat', 'mknod', 'mknodat'),
    ...never('chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown', 'lchown', 'fchownat'),
    ...never('setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat', 'removexattr', 'lremovexattr'),
    ...never('fremovexattr', 'removexattrat', 'utime', 'utimes', 'utimensat', 'futimesat'),
    { syscall: 'ioctl', allowWhen: [{ arg: 1, notIn: [TIOCSTI, TIOCLINUX] }] },
    // Shared memory and queues other root processes may own.
    ...never('shmget', 'shmat', 'shmctl', 'shmdt', 'msgget', 'msgsnd', 'msgrcv', 'msgctl'),
    ...never('semget', 'semop', 'semtimedop', 'semctl', 'mq_open', 'mq_unlink', 'mq_timedsend'),
    ...never('mq_timedreceive', 'mq_notify', 'mq_getsetattr'),
    // Mounts and namespaces (a new user namespace would hand out capabilities again).
    ...never('mount', 'umount2', 'pivot_root', 'chroot', 'move_mount', 'open_tree', 'open_tree_attr'),
    ...never('fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr', 'unshare', 'setns'),
    // The kernel's larger attack surfaces, and the machine's settings.
    ...never('io_uring_setup', 'io_uring_enter', 'io_uring_register', 'bpf', 'perf_event_open'),
    ...never('userfaultfd', 'keyctl', 'add_key', 'request_key', 'fanotify_init', 'modify_ldt'),
    ...never('init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'uselib'),
    ...never('reboot', 'swapon', 'swapoff', 'acct', 'quotactl', 'quotactl_fd', 'syslog', 'vhangup'),
    ...never('settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'sethostname', 'setdomainname'),
    ...never('personality', 'iopl', 'ioperm'),
    // landlock_* stay: applyCompileSandbox enters its domain under this filter, and a domain
    // only ever narrows what a process may do.
  ];
}

/**
 * What the launcher, and every compile process it starts, may still read (nothing may be written
 * through Landlock; the filter refuses it anyway): the node binary and the libraries it maps
 * (executable: the launcher execs node, and execve opens the ELF interpreter for execution),
 * the dynamic linker's cache, /dev/null, the cgroup tree, the package (its code; nothing else
 * lives there), and /proc. /proc stays because Node reads its own entries as it starts (maps, cgroup, meminfo)
 * and the sandbox checks its threads and descriptors there; another process's private entries
 * (environ, mem, fd/, root/, maps...) need ptrace access, which Landlock refuses to a process
 * outside the domain. Everything else, root's files among them (the state directory, keys,
 * /etc, /root, /run), is refused with EACCES.
 */
export function launcherReadRules(): PathRule[] {
  const mapped = new Set<string>();
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const path = /^\S+\s+\S+\s+\S+\s+\S+\s+[1-9]\d*\s+(\/.*)$/.exec(line)?.[1];
    if (path !== undefined && !path.endsWith(' (deleted)')) mapped.add(path);
  }
  return [
    { path: process.execPath, execute: true },
    ...[...mapped].map((path) => ({ path, execute: true })),
    { path: '/etc/ld.so.cache' },
    { path: '/etc/ld.so.preload' },
    { path: '/dev/null' },
    { path: '/proc' },
    // Node reads its memory limit there as it starts; limits and statistics, no secret.
    { path: '/sys/fs/cgroup' },
    // From sources (tests), the loader (tsx) runs esbuild's binary from node_modules to transform.
    { path: PACKAGE_ROOT, execute: !RUNNING_COMPILED },
  ];
}

/** How the launcher's first image tells its second the Landlock ABI of the domain it entered. */
const LANDLOCK_ENV = 'CAPGATE_LAUNCHER_LANDLOCK';

function landlockHere(): LandlockSupport {
  try {
    return landlockSupport();
  } catch (err) {
    return { ok: false, errno: 0, why: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The Landlock domain this launcher's first image entered before it re-executed (so every thread
 * of this image, and of each compile process it starts, is in it), taken out of the environment
 * (its compile processes say their own); `problem` when the kernel has Landlock and none was entered.
 */
export function launcherLandlock(): { report: LandlockReport; problem?: string } {
  const said = process.env[LANDLOCK_ENV];
  delete process.env[LANDLOCK_ENV];
  const abi = Number(said);
  if (said !== undefined && Number.isInteger(abi) && abi > 0) return { report: { abi, threads: 'all' } };
  const support = landlockHere();
  if (!support.ok) return { report: { abi: 0, why: support.why } };
  return {
    report: { abi: 0, why: 'no domain was entered' },
    problem: `the kernel has Landlock (ABI ${support.abi}) and the launcher entered no domain before it re-executed`,
  };
}

let relaunchFailure: string | undefined;

/** Why relaunchConfined could not re-execute this process, if it tried and could not. */
export function relaunchFailed(): string | undefined {
  return relaunchFailure;
}

const isIoUring = (f: OpenFd): boolean => f.target === 'anon_inode:[io_uring]';

/**
 * Re-executes this process as `node <its Node options> <script>`, keeping stdio and the IPC
 * channel (`serialization`: as the parent opened it; Node does not say), so that the new image
 * starts with what no thread of this one could give up by itself:
 * - no capability on any thread (see launcher-launch.ts);
 * - every thread in a Landlock domain that reads only launcherReadRules(): a domain covers the
 *   thread that enters it and what it starts, and an exec starts every thread of the new image
 *   (Linux before 7.0 cannot put a running sibling thread in one);
 * - no io_uring instance. libuv opens one per event loop as it starts, for epoll batching
 *   (Node 24; UV_USE_IO_URING governs only its file-operation ring), and aborts if a submission
 *   to it fails; a ring, once open, takes any operation (open for writing, connect) past every
 *   seccomp filter. A filter installed here refuses io_uring_setup, and the new image inherits
 *   it: its libuv falls back to plain epoll_ctl.
 * Returns when neither was needed, or when it failed (applyCompileSandbox then reports what is
 * left).
 */
export function relaunchConfined(script: string, serialization: 'advanced' | 'json'): void {
  const landlock = landlockHere();
  if (!processThreadCredentials('self').some(holdsCapabilities) && !openFds().some(isIoUring) && !landlock.ok) return;
  try {
    dropPrivilegesOfThisThread();
    const arch = syscallArch();
    if (arch !== undefined) {
      // A failure shows again, and is reported, when the new image installs its full filter.
      installSyscallFilter(arch, syscallFilter(arch, [{ syscall: 'io_uring_setup', errno: EPERM }]));
    }
    const channel = ipcChannelFd();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    // Node takes these two out of its environment once it has opened the channel.
    env.NODE_CHANNEL_FD = String(channel);
    env.NODE_CHANNEL_SERIALIZATION_MODE = serialization;
    // libuv's file-operation ring (off by default since Node 20.11), said once more.
    env.UV_USE_IO_URING = '0';
    // Node reads OpenSSL's configuration and these CA certificates as it starts (and stops if the
    // configuration cannot be read); nothing here speaks TLS, and both are outside the domain.
    env.OPENSSL_CONF = '/dev/null';
    delete env.NODE_EXTRA_CA_CERTS;
    if (landlock.ok) env[LANDLOCK_ENV] = String(restrictSelf(landlock.abi, launcherReadRules()).abi);
    relaunchFailure = execWithoutPrivileges(script, process.execArgv, env, [0, 1, 2, channel]);
  } catch (err) {
    relaunchFailure = err instanceof Error ? err.message : String(err);
  }
}

/**
 * Installs the launcher's filter (launcherSandboxRules) on every thread of this process, which
 * must have no_new_privs. Returns what failed, or undefined.
 */
export function applyLauncherSandbox(): string | undefined {
  const arch = syscallArch();
  if (arch === undefined) return `a system call table for this architecture (${process.arch})`;
  try {
    const installed = installSyscallFilter(arch, syscallFilter(arch, launcherSandboxRules()));
    return installed.ok ? undefined : installed.why;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The descriptor of this process's IPC channel to its parent (the launcher's to the daemon). */
export function ipcChannelFd(): number {
  const fd = (process.channel as unknown as { fd?: unknown } | undefined)?.fd;
  if (typeof fd !== 'number') throw new Error('this process has no IPC channel to its parent');
  return fd;
}

/**
 * Applies the sandbox to this process (every thread) and checks it took: the compile process
 * calls it once its code is loaded and before it takes a job. `channelFd`: its IPC channel.
 * Never throws: what failed is the report's `missing`.
 */
export function applyCompileSandbox(channelFd: number): SandboxReport {
  const started = performance.now();
  const fail = (why: string): SandboxReport => ({
    applied: false,
    missing:
      relaunchFailure === undefined ? why : `${why} (re-executing the process to shed it failed: ${relaunchFailure})`,
  });
  const arch = syscallArch();
  if (arch === undefined)
    return fail(`a system call table for this architecture (${process.arch}); the compile sandbox knows x64 and arm64`);
  let closedFds: number[];
  let boundingSet: string;
  try {
    closedFds = closeInheritedFds([0, 1, 2, channelFd]).map((f) => f.fd);
    lowerOwnLimit(RLIMIT_CORE, 0n);
    lowerOwnLimit(RLIMIT_FSIZE, 0n);
    lowerOwnLimit(RLIMIT_NOFILE, COMPILE_NOFILE);
    boundingSet = dropPrivilegesOfThisThread().boundingSet;
    const installed = installSyscallFilter(arch, syscallFilter(arch, compileSandboxRules(process.pid)));
    if (!installed.ok) return fail(installed.why);
    // A ring takes any operation past the filter (relaunchConfined keeps libuv from opening one).
    const ring = openFds().find(isIoUring);
    if (ring !== undefined)
      return fail(`an io_uring instance is open (fd ${ring.fd}) and would take any operation past the filter`);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
  const problem = unconfinedThread('self');
  if (problem !== undefined) return fail(problem);
  // Last, once nothing is left to read (/proc included): no file access at all. Every thread
  // where the kernel has TSYNC; before that this thread, which runs the pipeline, and those it
  // starts, while the others keep the launcher's domain (launcherReadRules: still none of root's
  // files).
  let landlock: LandlockReport;
  try {
    const support = landlockHere();
    landlock = support.ok ? restrictSelf(support.abi, [], true) : { abi: 0, why: support.why };
  } catch (err) {
    return fail(`entering a Landlock domain failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { applied: true, ms: performance.now() - started, closedFds, boundingSet, landlock };
}
