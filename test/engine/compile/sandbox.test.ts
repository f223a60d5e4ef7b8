// The compile process's sandbox (engine/compile/compile-sandbox.ts), applied by its real code in a
// real child (support/sandbox-attacker.ts, started through the same re-execution as the compile
// process): every class of call a hostile module would make once it runs code in the compile
// process is refused, while reading, allocating, threads and compiling still work. The same
// attacks run once without the sandbox first (the control): each succeeds there, so each
// refusal is the sandbox's doing. Then the daemon's side: a compile process that cannot sandbox
// itself gets no job unless allowUnsandboxed says so.
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompileProcess } from '../../../runtime/engine/compile/compile-process.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { KNOWN_LANDLOCK_ABI, landlockSupport } from '../../../runtime/os/landlock.ts';
import { Store } from '../../../runtime/store/store.ts';
import { processThreadCredentials, unconfinedThread } from '../../../runtime/os/thread-credentials.ts';
import { expectEveryThreadConfined } from '../../support/processes/confinement.ts';
import { COMPILE_NOFILE } from '../../../runtime/engine/compile/compile-sandbox.ts';
import { GUEST_EXAMPLES_DIR } from '../../../scripts/build-guests.ts';
import { REPO_ROOT } from '../../cli/support/run-cli.ts';
import { runChild, spawnChild } from '../../support/processes/children.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import type { AttackOrder, FromAttacker, Outcome } from './support/sandbox-attacker.ts';

const BOOTSTRAP = join(REPO_ROOT, 'runtime/bootstrap/register.mjs');
const support = (file: string): string => fileURLToPath(new URL(`./support/${file}`, import.meta.url));
const POLICY = join(GUEST_EXAMPLES_DIR, 'c', 'prebuilt', 'memlock-cap.wasm');
/**
 * Descriptors the attacker inherits without close-on-exec, as from systemd or a shell. Node
 * marks a low one close-on-exec as it starts (the re-execution then closes it); a higher one it
 * leaves, for the sandbox to close.
 */
const LEAKED_FDS = [7, 30];

/** What a compile needs, which the sandbox leaves. */
const NEEDED = [
  'allocate 64 MiB',
  'start a worker thread',
  'compile and run a wasm module',
  'compile a policy through the upload pipeline',
  'read its own limits',
  'signal itself (0)',
];
/** What the sandbox refuses (EPERM), each shown to work in the control run. */
const REFUSED = [
  'open a new file for writing',
  'open an existing file read-write',
  'unlink a file',
  'rename a file',
  'make a directory',
  'chmod a file',
  'socket()',
  'connect to a Unix socket',
  'fork',
  "read its parent's memlock limit",
  "set the victim's memlock limit",
  'signal its parent (0)',
  'renice the victim',
  'have the kernel signal the victim on I/O (F_SETOWN)',
  'trace the victim',
  'io_uring_setup',
  'unshare a UTS namespace',
  'execve /bin/true',
];

/** Files the compile process and its launcher must not read (EACCES), on any thread. */
const UNREADABLE = ['read a file', 'read a root-owned 0600 file', 'read the state database'].flatMap((name) => [
  name,
  `${name} on the thread pool`,
]);
const landlock = landlockSupport();
if (!landlock.ok) console.warn(`sandbox.test.ts: the Landlock tests are skipped: ${landlock.why}`);

let dir: string;
let secret: string;
let database: string;
let server: Server;
let connections = 0;
let victim: ChildProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'capgate-sandbox-'));
  server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(join(dir, 'listen.sock'), resolve));
  victim = spawnChild('sleep', ['300'], { stdio: 'ignore', scope: 'file' });
  // Root's own, as root keeps its secrets (this test runs as root): 0600, not world-readable.
  secret = join(dir, 'secret.key');
  writeFileSync(secret, 'root only', { mode: 0o600 });
  // A daemon's state database, made by the store as the daemon makes it.
  mkdirSync(join(dir, 'state'), { mode: 0o700 });
  database = join(dir, 'state', 'capgate.db');
  Store.open(database).close();
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

interface AttackerRun {
  sandbox: unknown;
  outcomes: Map<string, Outcome>;
  done: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Read from /proc while it waited for its orders. */
  threads: ReturnType<typeof processThreadCredentials>;
  /** What its descriptors point to. */
  fds: string[];
  /** The file its leaked descriptors opened. */
  existing: string;
  limits: string;
  stderr: string;
}

async function runAttacker(control: boolean, filter: 'compile' | 'launcher' = 'compile'): Promise<AttackerRun> {
  const label = control ? 'control' : filter === 'compile' ? 'sandboxed' : 'launcher';
  const existing = join(dir, `${label}.txt`);
  writeFileSync(existing, 'untouched');
  const entry = support(control ? 'sandbox-attacker.ts' : 'sandbox-attacker-launch.ts');
  // Through bash (dash takes one-digit descriptors only): the attacker inherits a descriptor without close-on-exec (Node marks its own).
  const child = spawnChild(
    'bash',
    [
      '-c',
      `${LEAKED_FDS.map((fd) => `exec ${fd}<"$0"`).join('; ')}; exec "$@"`,
      existing,
      process.execPath,
      '--import',
      BOOTSTRAP,
      entry,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, CAPGATE_ATTACKER_CONTROL: control ? '1' : filter === 'launcher' ? 'launcher' : '0' },
    },
  );
  const run: AttackerRun = {
    sandbox: undefined,
    outcomes: new Map(),
    done: false,
    code: null,
    signal: null,
    threads: [],
    fds: [],
    existing: '',
    limits: '',
    stderr: '',
  };
  child.stderr!.on('data', (d: Buffer) => (run.stderr += d.toString()));
  const order: AttackOrder = {
    created: join(dir, `${label}-created`),
    existing,
    socketPath: join(dir, 'listen.sock'),
    victim: victim.pid!,
    policy: readFileSync(POLICY).toString('base64'),
    secret,
    database,
    packageFile: join(REPO_ROOT, 'package.json'),
  };
  child.on('message', (m: FromAttacker) => {
    if (m.type === 'ready') {
      run.sandbox = m.sandbox;
      run.threads = processThreadCredentials(child.pid!);
      run.fds = readdirSync(`/proc/${child.pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${child.pid}/fd/${fd}`);
        } catch {
          return 'closed meanwhile';
        }
      });
      run.existing = existing;
      run.limits = readFileSync(`/proc/${child.pid}/limits`, 'utf8');
      child.send(order);
    } else if (m.type === 'outcome') run.outcomes.set(m.name, m.outcome);
    else run.done = true;
  });
  await new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      run.code = code;
      run.signal = signal;
      resolve();
    }),
  );
  return run;
}

/** This process's own bounding set holds CAP_SETPCAP (8): then the sandbox empties the child's. */
const canEmptyBoundingSet = ((processThreadCredentials('self')[0]?.capEff ?? 0n) >> 8n) & 1n;

/** The Landlock domain a compile process enters on this kernel. */
const expectedLandlock = landlock.ok
  ? { abi: Math.min(landlock.abi, KNOWN_LANDLOCK_ABI), threads: landlock.abi >= 8 ? 'all' : 'calling' }
  : { abi: 0, why: landlock.why };

describe('the compile sandbox, against a compile process taken over', () => {
  let controlRun: AttackerRun;
  let sandboxed: Promise<AttackerRun> | undefined;
  const sandboxedRun = (): Promise<AttackerRun> => (sandboxed ??= runAttacker(false));

  it('control: without the sandbox, every attack works (so each refusal below is the sandbox)', async () => {
    controlRun = await runAttacker(true);
    const failed = REFUSED.filter((name) => name !== 'execve /bin/true' && controlRun.outcomes.get(name)?.ok !== true);
    expect(
      failed.map((n) => `${n}: ${JSON.stringify(controlRun.outcomes.get(n))}`),
      controlRun.stderr,
    ).toEqual([]);
    // execve replaced the process with /bin/true: no word after it, exit 0.
    expect(controlRun.outcomes.has('execve /bin/true')).toBe(false);
    expect(controlRun.done).toBe(false);
    expect(controlRun.code).toBe(0);
    expect(controlRun.outcomes.get('file created')).toEqual({ ok: true, value: true });
    expect(connections).toBe(1);
    for (const name of [...UNREADABLE, 'read a file of the package', 'read a file of the package on the thread pool'])
      expect([name, controlRun.outcomes.get(name)?.ok]).toEqual([name, true]);
    // What the secret and the database hold is readable without the sandbox.
    expect(statSync(secret).mode & 0o777).toBe(0o600);
    expect(statSync(database).mode & 0o777).toBe(0o600);
  }, 120_000);

  it('refuses every class of escape (EPERM), and leaves memory, threads and compiling', async () => {
    const before = connections;
    const r = await sandboxedRun();
    expect(r.sandbox, r.stderr).toMatchObject({ applied: true });
    for (const name of NEEDED) expect([name, r.outcomes.get(name)?.ok], r.stderr).toEqual([name, true]);
    expect(r.outcomes.get('start a worker thread')).toEqual({ ok: true, value: 42 });
    expect(r.outcomes.get('compile and run a wasm module')).toEqual({ ok: true, value: 42 });
    for (const name of REFUSED) expect([name, r.outcomes.get(name)]).toEqual([name, { ok: false, error: 'EPERM' }]);
    // Nothing happened behind the errors.
    expect(r.outcomes.get('file created')).toEqual({ ok: true, value: false });
    expect(readFileSync(join(dir, 'sandboxed.txt'), 'utf8')).toBe('untouched');
    expect(readdirSync(dir).filter((f) => f.includes('sandboxed'))).toEqual(['sandboxed.txt']);
    expect(connections).toBe(before);
    // It went on after execve was refused, and ended on its own.
    expect([r.done, r.code, r.signal]).toEqual([true, 0, null]);
  }, 120_000);

  it.skipIf(!landlock.ok)(
    "reads none of root's files on any thread, and no file at all on its own (Landlock)",
    async () => {
      const r = await sandboxedRun();
      expect(r.sandbox, r.stderr).toMatchObject({ applied: true, landlock: expectedLandlock });
      for (const name of UNREADABLE)
        expect([name, r.outcomes.get(name)]).toEqual([name, { ok: false, error: 'EACCES' }]);
      // The thread that runs the pipeline reads nothing, its own package included. libuv's
      // threads ran before the sandbox: before Linux 7.0 (TSYNC) they keep the domain the
      // launcher entered, which reads the package and none of root's files.
      expect(r.outcomes.get('read a file of the package')).toEqual({ ok: false, error: 'EACCES' });
      expect(r.outcomes.get('read a file of the package on the thread pool')?.ok).toBe(
        expectedLandlock.threads !== 'all',
      );
    },
    120_000,
  );

  it('holds no capability on any thread, with no_new_privs, a seccomp filter, low limits and no inherited descriptor', async () => {
    const r = await sandboxedRun();
    expect(r.threads.length).toBeGreaterThan(1); // V8's platform threads, not only the main one
    for (const t of r.threads) {
      expect([t.tid, t.capEff, t.capPrm, t.capInh, t.capAmb]).toEqual([t.tid, 0n, 0n, 0n, 0n]);
      if (canEmptyBoundingSet) expect([t.tid, t.capBnd]).toEqual([t.tid, 0n]);
      expect([t.tid, t.noNewPrivs, t.seccomp]).toEqual([t.tid, true, 2]);
    }
    expect(r.limits).toMatch(/^Max file size\s+0\s+0\s/m);
    expect(r.limits).toMatch(/^Max core file size\s+0\s+0\s/m);
    expect(r.limits).toMatch(new RegExp(`^Max open files\\s+${COMPILE_NOFILE}\\s+${COMPILE_NOFILE}\\s`, 'm'));
    expect(r.sandbox).toMatchObject({ closedFds: expect.arrayContaining([30]) });
    expect(r.fds).not.toContain(r.existing);
    // No io_uring instance (Node 24's libuv opens one per loop as it starts, unless refused).
    expect(r.fds.filter((t) => t.includes('io_uring'))).toEqual([]);
  }, 120_000);
});

/** What the launcher's filter refuses too: it starts and kills processes, and does nothing else outside. */
const LAUNCHER_REFUSED = REFUSED.filter(
  (name) =>
    ![
      'fork',
      'execve /bin/true',
      "read its parent's memlock limit",
      "set the victim's memlock limit",
      'signal its parent (0)',
      'renice the victim',
    ].includes(name),
);

describe("the compile launcher's filter, against a launcher taken over", () => {
  it("refuses files, sockets, tracing, io_uring, namespaces and root's files, and leaves fork and exec of node", async () => {
    const before = connections;
    const r = await runAttacker(false, 'launcher');
    expect(r.sandbox, r.stderr).toMatchObject({ applied: true });
    for (const name of LAUNCHER_REFUSED)
      expect([name, r.outcomes.get(name)]).toEqual([name, { ok: false, error: 'EPERM' }]);
    expect(r.outcomes.get('fork')).toMatchObject({ ok: true });
    expect(r.outcomes.get('file created')).toEqual({ ok: true, value: false });
    expect(readFileSync(join(dir, 'launcher.txt'), 'utf8')).toBe('untouched');
    expect(connections).toBe(before);
    for (const t of r.threads) expect([t.tid, t.noNewPrivs, t.seccomp]).toEqual([t.tid, true, 2]);
    if (!landlock.ok) {
      // execve went through: the process became /bin/true, which exited 0 saying nothing more.
      expect(r.outcomes.has('execve /bin/true')).toBe(false);
      expect([r.done, r.code]).toEqual([false, 0]);
      return;
    }
    // Its Landlock domain executes node and nothing else outside the package: it went on, and ended on its own.
    expect(r.outcomes.get('execve /bin/true')).toEqual({ ok: false, error: 'EACCES' });
    expect([r.done, r.code]).toEqual([true, 0]);
    // Its Landlock domain, entered before it re-executed: every thread reads the package, and
    // none of root's files.
    expect(r.sandbox).toMatchObject({ landlock: { abi: expectedLandlock.abi, threads: 'all' } });
    for (const name of UNREADABLE) expect([name, r.outcomes.get(name)]).toEqual([name, { ok: false, error: 'EACCES' }]);
    expect(r.outcomes.get('read a file of the package')?.ok).toBe(true);
    expect(r.outcomes.get('read a file of the package on the thread pool')?.ok).toBe(true);
  }, 120_000);
});

describe("the daemon's side", () => {
  it('the compile process it runs, and the launcher that starts it, are confined on every thread, as /proc shows', async () => {
    const compiler = new CompileProcess();
    try {
      expect((await compiler.compile(await componentFromWat(policyWat()), DEFAULT_LIMITS)).ok).toBe(true);
      expect(compiler.lastSandbox).toMatchObject({ applied: true, landlock: expectedLandlock });
      const pid = compiler.pid!;
      expect(unconfinedThread(pid)).toBeUndefined();
      expect(processThreadCredentials(pid).map((t) => t.seccomp)).not.toContain(0);
      // Its launcher, whose child it is: confined on every thread too.
      const launcher = compiler.launcherPid!;
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]).toBe(String(launcher));
      expectEveryThreadConfined(launcher);
    } finally {
      await compiler.close();
    }
  }, 120_000);

  it('a compile process that cannot sandbox itself is refused, naming what is missing, unless allowUnsandboxed', async () => {
    // A process whose own seccomp filter refuses seccomp(2) (ENOSYS, as a kernel without it):
    // its compile process inherits it.
    const helper = support('no-seccomp-compiler.ts');
    const run = (allow: boolean) =>
      runChild(process.execPath, ['--import', BOOTSTRAP, helper, POLICY, allow ? 'allow' : 'refuse']);
    const refused = await run(false);
    expect(refused.code, refused.stderr).toBe(0);
    expect(JSON.parse(refused.stdout)).toEqual({
      ok: false,
      kind: 'invalid-module',
      message: expect.stringMatching(
        /^the policy could not be compiled: the compile launcher could not confine itself: seccomp\(SECCOMP_SET_MODE_FILTER\) failed with ENOSYS.*set engine\.allowUnsandboxedCompile/,
      ),
    });
    const allowed = await run(true);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ ok: true });
  }, 120_000);

  it('where the kernel has no Landlock, compiles still run (seccomp and no capabilities remain) and say so', async () => {
    // landlock_create_ruleset refused with ENOSYS, as a kernel built without Landlock: the daemon's
    // side finds none either, so nothing is refused (daemon.ts warns at start).
    const helper = support('no-seccomp-compiler.ts');
    const r = await runChild(process.execPath, [
      '--import',
      BOOTSTRAP,
      helper,
      POLICY,
      'refuse',
      'landlock_create_ruleset',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      ok: true,
      landlock: { abi: 0, why: expect.stringMatching(/^the kernel has no Landlock/) },
    });
  }, 120_000);
});
