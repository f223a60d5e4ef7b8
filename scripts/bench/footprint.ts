// Shared by the "cli" and "daemon" bench sections: a daemon started as an operator starts it
// (`capgate serve`, the package's bin), timed until its request socket accepts, its resident
// memory from /proc, and N distinct policies to push: the example policies in AssemblyScript,
// Rust and C, then memlock-cap in each language with a different overhead constant (different
// code, so V8 shares no compiled code between them).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../runtime/bootstrap/package-root.ts';
import { CapgateAdminClient } from '../../runtime/client/index.ts';

export const CAPGATE_BIN = path.join(PACKAGE_ROOT, 'runtime/cli/capgate.mjs');
export const EXAMPLE_POLICY = path.join(PACKAGE_ROOT, 'guest-examples/assemblyscript/build/memlock-cap.wasm');
const EXAMPLES = path.join(PACKAGE_ROOT, 'guest-examples');
const MEMLOCK_CAP = [
  EXAMPLE_POLICY,
  path.join(EXAMPLES, 'rust/prebuilt/memlock-cap.wasm'),
  path.join(EXAMPLES, 'c/prebuilt/memlock-cap.wasm'),
];
const VFIO_ONLY = [
  path.join(EXAMPLES, 'assemblyscript/build/vfio-only.wasm'),
  path.join(EXAMPLES, 'rust/prebuilt/vfio-only.wasm'),
  path.join(EXAMPLES, 'c/prebuilt/vfio-only.wasm'),
];

export interface ServedDaemon {
  child: ChildProcess;
  admin: string;
  request: string;
  /** From spawning `capgate serve` to the request socket accepting a connection. */
  listeningMs: number;
  stop(): Promise<void>;
}

function accepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Starts `capgate serve` on `dir`/run and `dir`/state and waits (polling every 2 ms, 60 s at most) until the request socket accepts. */
export async function serveIn(dir: string): Promise<ServedDaemon> {
  const run = path.join(dir, 'run');
  const request = path.join(run, 'request.sock');
  const t0 = process.hrtime.bigint();
  const child = spawn(
    process.execPath,
    [CAPGATE_BIN, 'serve', '--run-dir', run, '--state-dir', path.join(dir, 'state'), '--log-level', 'error'],
    { cwd: PACKAGE_ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`capgate serve exited with ${child.exitCode}`);
    if (fs.existsSync(request) && (await accepts(request))) break;
    if (i > 30_000) throw new Error('capgate serve did not listen within 60 s');
    await new Promise((r) => setTimeout(r, 2));
  }
  const listeningMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return {
    child,
    admin: path.join(run, 'admin.sock'),
    request,
    listeningMs,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** memlock-cap's overhead, 256 MiB, as its code holds it: `i64.const 268435456` (signed LEB128). */
const OVERHEAD_CONST = Buffer.from([0x42, 0x80, 0x80, 0x80, 0x80, 0x01]);

/** memlock-cap with `delta` (1-127) bytes more overhead: the same length, different code. */
function withOverheadDelta(bytes: Buffer, delta: number): Buffer {
  const at = bytes.indexOf(OVERHEAD_CONST);
  if (at < 0 || bytes.indexOf(OVERHEAD_CONST, at + 1) >= 0 || !(delta >= 1 && delta <= 127))
    throw new Error('memlock-cap does not hold its overhead constant exactly once: rebuild the example guests');
  const out = Buffer.from(bytes);
  out[at + 1] = 0x80 | delta; // the low 7 bits of the constant, continuation bit kept
  return out;
}

/**
 * `n` policies with distinct code: memlock-cap (AssemblyScript first: the one the cli section
 * binds) and vfio-only in the three languages, then memlock-cap variants, language by language.
 */
export function distinctPolicies(n: number): Uint8Array[] {
  const memlock = MEMLOCK_CAP.map((f) => fs.readFileSync(f));
  const out: Buffer[] = [...memlock, ...VFIO_ONLY.map((f) => fs.readFileSync(f))];
  for (let delta = 1; out.length < n; delta++) out.push(...memlock.map((b) => withOverheadDelta(b, delta)));
  return out.slice(0, n).map((b) => new Uint8Array(b));
}

/** Pushes the policies as bench-0, bench-1, …; binds the first to set-memlock. */
export async function pushPolicies(adminSocket: string, policies: Uint8Array[], offset = 0): Promise<void> {
  const admin = new CapgateAdminClient({ socketPath: adminSocket, timeoutMs: 600_000 });
  try {
    for (const [i, bytes] of policies.entries()) {
      const name = `bench-${offset + i}`;
      await admin.pushPolicy(name, bytes);
      if (offset + i === 0) await admin.bind('set-memlock', { policy: name });
    }
  } finally {
    admin.close();
  }
}

export interface Resident {
  /** VmRSS, MB. */
  rssMb: number;
  /** RssAnon (heaps, wasm memories, JIT code), MB. */
  anonMb: number;
  /** RssFile (the node binary, shared libraries, native addons), MB. */
  fileMb: number;
  threads: number;
  /** Compile processes (while one runs; the compile launcher, which stays, is not counted). */
  children: number;
}

export function resident(pid: number): Resident {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return {
    rssMb: kb('VmRSS') / 1024,
    anonMb: kb('RssAnon') / 1024,
    fileMb: kb('RssFile') / 1024,
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN),
    children: compileProcesses(pid).length,
  };
}

/** The compile processes below `pid` (its compile launcher's children), from /proc. */
export function compileProcesses(pid: number): number[] {
  return childPids(pid)
    .flatMap((child) => {
      try {
        return childPids(child);
      } catch {
        return []; // exited meanwhile
      }
    })
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('compile-main');
      } catch {
        return false;
      }
    });
}

/** The child processes of `pid` (of all its threads), from /proc. */
export function childPids(pid: number): number[] {
  return fs
    .readdirSync(`/proc/${pid}/task`)
    .flatMap((tid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/);
      } catch {
        return []; // the thread ended meanwhile
      }
    })
    .filter((p) => p !== '')
    .map(Number);
}

/**
 * Resident memory once it stops moving: once the daemon has no compile process left (it ends
 * when it has nothing to compile; 30 s at most), sampled every 250 ms until two
 * samples are within 1 MB (10 s at most).
 */
export async function settledResident(pid: number): Promise<Resident> {
  for (let i = 0; i < 300 && compileProcesses(pid).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  let last = resident(pid);
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const now = resident(pid);
    if (Math.abs(now.rssMb - last.rssMb) < 1) return now;
    last = now;
  }
  return last;
}
