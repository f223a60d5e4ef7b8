// A compile process taken over by a hostile module, as far as a test can play one: it applies the
// compile sandbox (compile-sandbox.ts; the compile launcher's filter with
// CAPGATE_ATTACKER_CONTROL=launcher; none with CAPGATE_ATTACKER_CONTROL=1: the control run that
// shows each attack works without it), then tries every class of call the sandbox refuses and
// every thing a compile still needs, and reports each outcome over its IPC channel.
// Driven by sandbox.test.ts: 'ready' (with the sandbox report), then on 'go' the attacks.
import { createRequire } from 'node:module';
import { closeSync, existsSync, openSync, promises, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import {
  applyCompileSandbox,
  applyLauncherSandbox,
  ipcChannelFd,
  launcherLandlock,
} from '../../../../runtime/engine/compile/compile-sandbox.ts';
import { compilePolicy, loadCompilePipeline } from '../../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../../../runtime/engine/limits.ts';
import type { SandboxReport } from '../../../../runtime/engine/compile/compile-protocol.ts';

export interface AttackOrder {
  /** A file to create, beside `existing`, one to change, in the test's temporary directory. */
  created: string;
  existing: string;
  /** A Unix socket the test listens on. */
  socketPath: string;
  /** A process of the test's (sleep) to trace, renice and signal. */
  victim: number;
  /** A policy component to compile, base64 (the sandbox leaves no file to read it from). */
  policy: string;
  /** A root-owned 0600 file in the test's temporary directory, as root keeps its secrets. */
  secret: string;
  /** A daemon's state database (SQLite, 0600), as the daemon makes it. */
  database: string;
  /** A file of the package (its package.json). */
  packageFile: string;
}

export type Outcome = { ok: true; value?: unknown } | { ok: false; error: string };
export type FromAttacker =
  | { type: 'ready'; sandbox: SandboxReport | 'control' }
  | { type: 'outcome'; name: string; outcome: Outcome }
  | { type: 'done' };

interface Koffi {
  load(path: string): { func(prototype: string): (...args: unknown[]) => unknown };
  errno(): number;
}
const koffi = createRequire(import.meta.url)('koffi') as Koffi;
const lib = koffi.load('libc.so.6');
const fn = (prototype: string): ((...args: unknown[]) => number) => {
  const f = lib.func(prototype);
  return (...args) => Number(f(...args));
};
const execve = fn('int execve(const char *path, const char **argv, const char **envp)');
const fork = fn('int fork()');
const exit = fn('void _exit(int status)');
const socket = fn('int socket(int domain, int type, int protocol)');
const prlimit = fn('int prlimit(int pid, int resource, void *new_limit, void *old_limit)');
const ptrace = fn('long ptrace(long request, long pid, void *addr, void *data)');
const setpriority = fn('int setpriority(int which, uint32_t who, int prio)');
const ioUringSetup = fn('long syscall(long number, long entries, void *params)');
const unshare = fn('int unshare(int flags)');
const fcntl = fn('int fcntl(int fd, int command, int arg)');

const ERRNO: Record<number, string> = { 1: 'EPERM', 13: 'EACCES', 38: 'ENOSYS' };
/** A libc call's outcome: its value, or the errno it failed with. */
const call = (rc: number): Outcome =>
  rc < 0 ? { ok: false, error: ERRNO[koffi.errno()] ?? `errno ${koffi.errno()}` } : { ok: true, value: rc };
const thrown = (err: unknown): Outcome => ({
  ok: false,
  error: (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err)),
});
const attempt = async (f: () => unknown): Promise<Outcome> => {
  try {
    const value = await f();
    return { ok: true, ...(value !== undefined ? { value } : {}) };
  } catch (err) {
    return thrown(err);
  }
};

const send = (m: FromAttacker): Promise<void> =>
  new Promise((resolve, reject) => process.send!(m, (err: Error | null) => (err ? reject(err) : resolve())));

const mode = process.env.CAPGATE_ATTACKER_CONTROL;
const launcherSandbox = (): SandboxReport => {
  const landlock = launcherLandlock();
  const problem = applyLauncherSandbox() ?? landlock.problem;
  return problem === undefined
    ? { applied: true, ms: 0, closedFds: [], boundingSet: 'not changed', landlock: landlock.report }
    : { applied: false, missing: problem };
};
// As the compile process does: what the pipeline reads from disk, read before the sandbox.
await loadCompilePipeline();
const sandbox =
  mode === '1' ? 'control' : mode === 'launcher' ? launcherSandbox() : applyCompileSandbox(ipcChannelFd());

process.once('message', (order: AttackOrder) => void attack(order));
await send({ type: 'ready', sandbox });

async function attack(o: AttackOrder): Promise<void> {
  const report = (name: string, outcome: Outcome): Promise<void> => send({ type: 'outcome', name, outcome });
  const RLIMIT_MEMLOCK = 8;
  const RLIMIT_NOFILE = 7;
  const old = Buffer.alloc(16);

  // Reading files: each on this thread and on libuv's thread pool (threads that ran before the
  // sandbox; on Linux before 7.0 only the launcher's domain covers them).
  const read = async (name: string, file: string): Promise<void> => {
    await report(name, await attempt(() => readFileSync(file).length));
    await report(`${name} on the thread pool`, await attempt(async () => (await promises.readFile(file)).length));
  };
  await read('read a file', o.existing);
  await read('read a root-owned 0600 file', o.secret);
  await read('read the state database', o.database);
  await read('read a file of the package', o.packageFile);

  // What a compile needs.
  await report('allocate 64 MiB', await attempt(() => Buffer.alloc(64 << 20, 1).length));
  await report(
    'start a worker thread',
    await attempt(
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker('require("node:worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
          w.once('message', (v) => void w.terminate().then(() => resolve(v)));
          w.once('error', reject);
        }),
    ),
  );
  await report(
    'compile and run a wasm module',
    await attempt(async () => {
      // (module (func (export "f") (result i32) i32.const 42))
      const bytes = Uint8Array.from([
        0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 6, 1, 4, 0, 65, 42,
        11,
      ]);
      const { instance } = await WebAssembly.instantiate(bytes);
      return (instance.exports.f as () => number)();
    }),
  );
  await report(
    'compile a policy through the upload pipeline',
    await attempt(async () => {
      const r = await compilePolicy(Buffer.from(o.policy, 'base64'), DEFAULT_LIMITS);
      if (!r.ok) throw new Error(r.message);
      return r.policy.exports.length;
    }),
  );
  await report('read its own limits', call(prlimit(0, RLIMIT_NOFILE, null, old)));
  await report('signal itself (0)', await attempt(() => process.kill(process.pid, 0)));

  // What it must not do.
  await report('open a new file for writing', await attempt(() => closeSync(openSync(o.created, 'w'))));
  await report('file created', { ok: true, value: existsSync(o.created) });
  await report('open an existing file read-write', await attempt(() => closeSync(openSync(o.existing, 'r+'))));
  await report('make a directory', await attempt(() => promises.mkdir(`${o.created}.dir`)));
  await report('chmod a file', await attempt(() => promises.chmod(o.existing, 0o777)));
  const moved = `${o.existing}.moved`;
  await report('rename a file', await attempt(() => promises.rename(o.existing, moved)));
  // The control run renamed it: unlink the name it has now.
  await report('unlink a file', await attempt(() => promises.unlink(existsSync(moved) ? moved : o.existing)));
  await report('socket()', call(socket(1 /* AF_UNIX */, 1 /* SOCK_STREAM */, 0)));
  await report(
    'connect to a Unix socket',
    await attempt(
      () =>
        new Promise<void>((resolve, reject) => {
          const s = connect(o.socketPath, () => {
            s.destroy();
            resolve();
          });
          s.once('error', reject);
        }),
    ),
  );
  await report(
    'fork',
    ((): Outcome => {
      const pid = fork();
      if (pid === 0) exit(0); // the child of a control run: gone at once
      return call(pid);
    })(),
  );
  await report("read its parent's memlock limit", call(prlimit(process.ppid, RLIMIT_MEMLOCK, null, old)));
  old.writeBigUInt64LE(1n << 20n, 0);
  old.writeBigUInt64LE(1n << 20n, 8);
  await report("set the victim's memlock limit", call(prlimit(o.victim, RLIMIT_MEMLOCK, old, null)));
  await report('signal its parent (0)', await attempt(() => process.kill(process.ppid, 0)));
  await report('renice the victim', call(setpriority(0, o.victim, 19)));
  const F_SETOWN = 8;
  await report('have the kernel signal the victim on I/O (F_SETOWN)', call(fcntl(2, F_SETOWN, o.victim)));
  const PTRACE_SEIZE = 0x4206;
  const PTRACE_DETACH = 17;
  const traced = call(ptrace(PTRACE_SEIZE, o.victim, null, null));
  if (traced.ok) ptrace(PTRACE_DETACH, o.victim, null, null);
  await report('trace the victim', traced);
  const ioUring = call(ioUringSetup(425, 1, Buffer.alloc(120)));
  if (ioUring.ok) closeSync(Number(ioUring.value));
  await report('io_uring_setup', ioUring);
  await report('unshare a UTS namespace', call(unshare(0x04000000 /* CLONE_NEWUTS */)));
  // Last: in the control run it replaces this process, which then exits 0 saying nothing more.
  await report('execve /bin/true', call(execve('/bin/true', ['/bin/true', null], [null])));
  await send({ type: 'done' });
  process.exit(0);
}
