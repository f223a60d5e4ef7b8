// Who gets a core first, in a real daemon (`capgate serve`, compiled), as the kernel reports it
// in /proc/<pid>/task/<tid>/sched: the compile launcher and its compile processes run at
// SCHED_IDLE on every thread, so an upload takes a core only when the daemon's threads leave one.
import { describe, expect, it } from 'vitest';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { SCHED_IDLE, SCHED_OTHER } from '../../runtime/os/thread-priority.ts';
import { componentFromWat, policyWat } from '../support/components.ts';
import { descendantsOf, processTable } from '../support/processes/proc-table.ts';
import { processSched } from '../support/processes/thread-sched.ts';
import { serveDaemonForFile } from '../support/served-daemon.ts';
import { waitFor, waitUntil } from '../support/wait.ts';

const served = serveDaemonForFile();

/** The processes below `pid` whose command line names `script` (compile-main, launcher-main). */
function below(pid: number, script: string): number[] {
  const table = processTable();
  const tree = descendantsOf([pid], table);
  return table.filter((p) => p.pid !== pid && tree.has(p.pid) && p.cmdline.includes(script)).map((p) => p.pid);
}

describe('CPU priority in the daemon', () => {
  it('the compile launcher and the compile process run at SCHED_IDLE on every thread; the daemon at SCHED_OTHER', async () => {
    const d = served.daemon;
    const admin = new CapgateAdminClient({ socketPath: d.adminSocket, timeoutMs: 120_000 });
    try {
      const push = admin.pushPolicy('idle', await componentFromWat(policyWat()));
      const compile = await waitFor(() => below(d.pid, 'compile-main')[0], "the upload's compile process to start");
      // Read as soon as it has its V8 threads: inherited from the launcher, not set later.
      const seen = await waitFor(() => {
        const threads = processSched(compile);
        return threads.length > 1 ? threads : undefined;
      }, 'the compile process to start its threads');
      expect(new Set(seen.map((t) => t.policy))).toEqual(new Set([SCHED_IDLE]));
      expect((await push).created).toBe(true);
    } finally {
      admin.close();
    }
    // The launcher that forked it (up: it compiled).
    const [launcher] = below(d.pid, 'launcher-main');
    expect(launcher).toBeDefined();
    const launcherThreads = processSched(launcher!);
    expect(launcherThreads.length).toBeGreaterThan(1);
    expect(new Set(launcherThreads.map((t) => t.policy))).toEqual(new Set([SCHED_IDLE]));
    expect(new Set(processSched(d.pid).map((t) => t.policy))).toEqual(new Set([SCHED_OTHER]));
    await waitUntil(
      () => below(d.pid, 'compile-main').length === 0,
      'the compile process to exit after its idle second',
    );
  }, 120_000);
});
