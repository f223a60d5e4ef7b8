// The compile pipeline (binaryen, jco's wasm-tools: ~100 MB once loaded) leaves nothing behind
// in a real daemon (`capgate serve`, compiled): after policies in AssemblyScript, Rust and C
// are pushed, bound and evaluated, the daemon has no compile process left, no more threads than
// when idle, grew by far less than the pipeline's size, and its own process (main thread and
// evaluation workers) never loaded binaryen or wasm-tools (the module trace of
// test/cli/support/module-trace.mjs, which the compile process does not inherit).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { validateVmRegistration } from '../../runtime/identity/index.ts';
import { childPids, resident } from '../../scripts/bench/footprint.ts';
import { GUEST_EXAMPLES_DIR } from '../../scripts/build-guests.ts';
import { REPO_ROOT } from '../cli/support/run-cli.ts';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { serveDaemonForFile } from '../support/served-daemon.ts';
import { waitUntil } from '../support/wait.ts';

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
    // The compile process ends a second after its last answer (engine/compile/compile-process.ts).
    await waitUntil(
      () => childPids(d.pid).length === 0,
      () => `the daemon's compile process to exit (children: ${childPids(d.pid).join(', ')})`,
    );
    expect(threads(d.pid)).toBeLessThanOrEqual(idleThreads);
    expect(resident(d.pid).rssMb - idleRss).toBeLessThan(GROWTH_BOUND_MB);

    expect(await d.stop()).toBe(0);
    const modules = loadedModules();
    // The control: the trace saw the daemon's engine and its evaluation workers.
    expect(modules).toContain('dist/runtime/engine/engine.js');
    expect(modules).toContain('dist/runtime/engine/worker/worker-main.js');
    const pipeline = modules.filter(
      (m) =>
        /node_modules\/(binaryen|@bytecodealliance)\//.test(m) ||
        /^dist\/runtime\/engine\/(compile|compile\/compile-main)\.js$/.test(m),
    );
    expect(pipeline).toEqual([]);
  }, 240_000);
});
