// The compile pipeline (binaryen, jco's wasm-tools: ~100 MB once loaded) leaves nothing behind
// in a real daemon (`capgate serve`, compiled): after policies in AssemblyScript, Rust and C
// are pushed, bound and evaluated, the daemon has no compile process left (only its compile
// launcher), no more threads than when idle, grew by far less than the pipeline's size, and its
// own process (main thread and evaluation workers) never loaded binaryen or wasm-tools (the
// module trace of test/cli/support/module-trace.mjs, which the launcher does not inherit).
// The daemon's main thread forks no process for an upload (strace), the launcher is confined,
// one killed mid-compile costs that compile only, and a daemon killed -9 leaves neither behind.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { validateVmRegistration } from '../../runtime/identity/index.ts';
import { childPids, resident } from '../../scripts/bench/footprint.ts';
import { CapgateApiError } from '../../runtime/client/errors.ts';
import { expectEveryThreadConfined } from '../support/processes/confinement.ts';
import { componentFromWat, policyWat } from '../support/components.ts';
import { descendantsRunning, readProc } from '../support/processes/proc-table.ts';
import { spawnChild } from '../support/processes/children.ts';
import { serveDaemon } from '../cli/support/daemon.ts';
import { GUEST_EXAMPLES_DIR } from '../../scripts/build-guests.ts';
import { REPO_ROOT, runCli } from '../cli/support/run-cli.ts';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { serveDaemonForFile } from '../support/served-daemon.ts';
import { waitFor, waitUntil } from '../support/wait.ts';

const TRACE = fileURLToPath(new URL('../cli/support/module-trace.mjs', import.meta.url));
/** Far below the ~140 MB the pipeline kept when it stayed in the daemon's process, far above the
 * few MB three policies cost (heap garbage not yet collected included). */
const GROWTH_BOUND_MB = 60;

let guests: ExampleGuests;
let work: string;
const trace = (): string => join(work, 'daemon-modules.txt');

// Before the daemon's start (hooks run in the order they are registered): the trace goes in `work`.
beforeAll(async () => {
  guests = await ensureExampleGuests();
  work = mkdtempSync(join(tmpdir(), 'capgate-compile-process-'));
});
const served = serveDaemonForFile({
  vm: true,
  nodeArgs: ['--import', TRACE],
  env: () => ({ CAPGATE_MODULE_TRACE: trace() }),
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const threads = (pid: number): number => readdirSync(`/proc/${pid}/task`).length;

const compileProcesses = (daemon: number): number[] => descendantsRunning(daemon, 'compile-main');
const launchers = (daemon: number): number[] => descendantsRunning(daemon, 'launcher-main');

/** A policy no push has sent yet (a different constant each call): its upload compiles. */
let fresh = 0;
const freshPolicy = (): Promise<Uint8Array> =>
  componentFromWat(policyWat({ extra: `(global $fresh i32 (i32.const ${++fresh}))` }));

function loadedModules(): string[] {
  const urls = readFileSync(trace(), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('file:'));
  return [...new Set(urls.map((u) => relative(REPO_ROOT, fileURLToPath(u))))];
}

describe('the compile process', () => {
  it('is gone once policies are compiled: no child, idle threads, bounded RSS, no binaryen in the daemon', async () => {
    const d = served.daemon;
    const idleThreads = threads(d.pid);
    const idleRss = resident(d.pid).rssMb;
    const admin = new CapgateAdminClient({ socketPath: d.adminSocket, timeoutMs: 120_000 });
    try {
      const reg = validateVmRegistration({
        identity: {
          uuid: '2b0f4f0c-6a43-4f7e-9c1e-5d8f3a1b7c20',
          name: 'compile-process-vm',
          id: 7,
          labels: [['memory-bytes', String(1n << 30n)]],
        },
        anchor: { rootPid: served.vm.pid },
      });
      if (!reg.ok) throw new Error(reg.error);
      await admin.registerVm(reg.vm);
      const policies = [
        guests.memlockCap,
        join(GUEST_EXAMPLES_DIR, 'rust', 'prebuilt', 'memlock-cap.wasm'),
        join(GUEST_EXAMPLES_DIR, 'c', 'prebuilt', 'memlock-cap.wasm'),
      ];
      for (const [i, file] of policies.entries()) {
        await admin.pushPolicy(`lang-${i}`, readFileSync(file));
        await admin.bind('set-memlock', { policy: `lang-${i}` });
        const r = await served.vm.request('1Mi');
        expect(r.body.decision, JSON.stringify(r.body)).toBe('allow');
      }
    } finally {
      admin.close();
    }
    // The compile process ends a second after its last answer (engine/compile/compile-process.ts);
    // the launcher stays, the daemon's only child.
    await waitUntil(
      () => compileProcesses(d.pid).length === 0,
      () => `the daemon's compile process to exit (children: ${childPids(d.pid).join(', ')})`,
    );
    expect(childPids(d.pid)).toEqual(launchers(d.pid));
    expect(launchers(d.pid)).toHaveLength(1);
    expect(threads(d.pid)).toBeLessThanOrEqual(idleThreads);
    expect(resident(d.pid).rssMb - idleRss).toBeLessThan(GROWTH_BOUND_MB);
  }, 240_000);

  it("the daemon's main thread forks no process for an upload (strace); the launcher does", async () => {
    const d = served.daemon;
    const admin = new CapgateAdminClient({ socketPath: d.adminSocket, timeoutMs: 120_000 });
    const log = join(work, 'strace.log');
    const noCompileProcess = (): Promise<void> =>
      waitUntil(() => compileProcesses(d.pid).length === 0, 'the compile process to exit after its idle second');
    await noCompileProcess();
    // Process creation, and accept4 as the control that the main thread was traced at all.
    const strace = spawnChild(
      'strace',
      ['-f', '-qq', '-e', 'trace=clone,clone3,fork,vfork,accept4', '-o', log, '-p', String(d.pid)],
      { stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => strace.once('exit', resolve));
    try {
      await waitUntil(
        () => readdirSync(`/proc/${d.pid}/task`).every((tid) => tracedBy(d.pid, tid) !== 0),
        'strace to attach to every thread of the daemon',
      );
      // Two uploads, each starting a compile process (none is left from the one before).
      for (let i = 0; i < 2; i++) {
        const started = waitFor(() => compileProcesses(d.pid)[0], "the upload's compile process to start");
        await admin.pushPolicy(`no-fork-${i}`, await freshPolicy());
        await started;
        await noCompileProcess();
      }
    } finally {
      admin.close();
      strace.kill('SIGINT'); // detaches
      await exited;
    }
    const mainThread = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith(`${d.pid} `));
    expect(mainThread.filter((l) => l.includes('accept4(')).length).toBeGreaterThan(0);
    const forks = mainThread.filter((l) => /^\d+ +(clone3?|fork|vfork)\(/.test(l) && !l.includes('CLONE_THREAD'));
    expect(forks).toEqual([]);
  }, 240_000);

  it('the launcher holds no capability on any thread, has no_new_privs and a seccomp filter', () => {
    const d = served.daemon;
    const [launcher] = launchers(d.pid);
    expect(launcher).toBeDefined();
    expectEveryThreadConfined(launcher!);
  });

  it('a launcher killed -9 mid-compile: that upload gets 503 compiler-unavailable with Retry-After, nothing is stored, and the next one is compiled', async () => {
    const d = served.daemon;
    const admin = new CapgateAdminClient({ socketPath: d.adminSocket, timeoutMs: 120_000 });
    try {
      await waitUntil(() => compileProcesses(d.pid).length === 0, 'the compile process to exit after its idle second');
      const [launcher] = launchers(d.pid);
      const before = await admin.listPolicies();
      const push = admin.pushPolicy('lost', await freshPolicy()).then(
        () => 'accepted',
        (err: unknown) => err,
      );
      const compile = await waitFor(() => compileProcesses(d.pid)[0], "the upload's compile process to start");
      process.kill(launcher!, 'SIGKILL');
      const refusal = await push;
      expect(refusal).toBeInstanceOf(CapgateApiError);
      // Not a verdict on the policy (422 invalid-policy): a 503 of its own kind, with the wait
      // (a first death: the launcher is started again at once, so the least Retry-After, 1 s).
      expect(refusal).toMatchObject({
        status: 503,
        code: 'compiler-unavailable',
        retryAfterS: 1,
        message: expect.stringMatching(
          /the compile launcher died \(SIGKILL\) while (compiling the policy|the compile process started); it is started again: try again/,
        ),
      });
      // Nothing was stored.
      expect(await admin.listPolicies()).toEqual(before);
      // Its compile process went with it (its parent-death signal), and a new launcher serves.
      await waitUntil(() => readProc(compile) === null, 'the orphaned compile process to die');
      expect((await admin.pushPolicy('after', await freshPolicy())).created).toBe(true);
      expect(launchers(d.pid)).toHaveLength(1);
      expect(launchers(d.pid)).not.toContain(launcher);
    } finally {
      admin.close();
    }
  }, 240_000);

  it('the CLI shows that refusal as retryable, with its wait (text and --json), and the same push then succeeds', async () => {
    const d = served.daemon;
    const admin = new CapgateAdminClient({ socketPath: d.adminSocket, timeoutMs: 120_000 });
    const file = join(work, 'retried.wasm');
    writeFileSync(file, await freshPolicy());
    const push = (...extra: string[]): ReturnType<typeof runCli> =>
      runCli(['policy', 'push', file, '--name', 'retried', '--socket', d.adminSocket, ...extra]);
    /** Pushes with the CLI, and kills the launcher once the push's (cold) compile process has started. */
    const pushLosingTheLauncher = async (...extra: string[]): ReturnType<typeof runCli> => {
      await waitUntil(() => compileProcesses(d.pid).length === 0, 'the compile process to exit after its idle second');
      const [launcher] = launchers(d.pid);
      const run = push(...extra);
      await waitFor(() => compileProcesses(d.pid)[0], "the push's compile process to start");
      process.kill(launcher!, 'SIGKILL');
      const r = await run;
      // Started again after its back-off (it died young again: 100 ms, then 200 ms).
      await waitUntil(() => launchers(d.pid).length === 1 && !launchers(d.pid).includes(launcher!), 'a new launcher');
      return r;
    };
    try {
      const json = await pushLosingTheLauncher('--json');
      // EX_TEMPFAIL: a code of its own, not a refusal's 1.
      expect(json.code, json.stderr).toBe(75);
      expect(JSON.parse(json.stdout)).toMatchObject({
        error: {
          kind: 'compiler-unavailable',
          retryable: true,
          retryAfterS: expect.any(Number),
          message: expect.stringMatching(
            /^the daemon cannot do it now \(retryable, after \d+ s\): (the policy could not be compiled: )?the compile launcher died \(SIGKILL\)/,
          ),
          hint: expect.stringMatching(/^nothing was changed; push it again in \d+ s$/),
        },
        exitCode: 75,
      });
      const text = await pushLosingTheLauncher();
      expect(text.code).toBe(75);
      expect(text.stderr).toMatch(/^error: the daemon cannot do it now \(retryable, after \d+ s\): /m);
      expect(text.stderr).toMatch(/\nhint: nothing was changed; push it again in \d+ s\n$/);
      expect((await admin.listPolicies()).policies.map((p) => p.name)).not.toContain('retried');
      // The launcher is back: the same push, asked again, is stored.
      const again = await push();
      expect(again.code, again.stderr).toBe(0);
      expect((await admin.getPolicy('retried')).latestRevision).toBe(1);
    } finally {
      admin.close();
    }
  }, 240_000);

  it('its own process never loaded the pipeline (the module trace, read once the daemon stopped)', async () => {
    const d = served.daemon;
    expect(await d.stop()).toBe(0);
    const modules = loadedModules();
    // The control: the trace saw the daemon's engine and its evaluation workers.
    expect(modules).toContain('dist/runtime/engine/engine.js');
    expect(modules).toContain('dist/runtime/engine/worker/worker-main.js');
    // Every upload's module was verified to be metered, in the verifier's worker, without the pipeline.
    expect(modules).toContain('dist/runtime/engine/verify/verify-worker-main.js');
    const pipeline = modules.filter(
      (m) =>
        /node_modules\/(binaryen|@bytecodealliance)\//.test(m) ||
        /^dist\/runtime\/engine\/(compile|compile\/compile-main)\.js$/.test(m),
    );
    expect(pipeline).toEqual([]);
  }, 240_000);
});

/** The TracerPid of one thread of `pid` (0: not traced; the thread gone counts as traced). */
function tracedBy(pid: number, tid: string): number {
  try {
    return Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return -1;
  }
}

describe('a daemon killed -9', () => {
  it('leaves neither its launcher nor its compile process behind', async () => {
    const d = await serveDaemon();
    const admin = new CapgateAdminClient({ socketPath: d.adminSocket, timeoutMs: 120_000 });
    try {
      const push = admin.pushPolicy('orphan', await freshPolicy()).catch(() => undefined);
      const compile = await waitFor(() => compileProcesses(d.pid)[0], "the upload's compile process to start");
      const launcher = launchers(d.pid);
      expect(launcher).toHaveLength(1);
      process.kill(d.pid, 'SIGKILL');
      await push;
      await waitUntil(
        () => [compile, ...launcher].every((pid) => readProc(pid) === null),
        () => `the launcher ${launcher} and the compile process ${compile} to die with the daemon`,
      );
    } finally {
      admin.close();
      rmSync(d.dir, { recursive: true, force: true });
    }
  }, 120_000);
});
