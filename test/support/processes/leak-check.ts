// vitest globalSetup: gives the run its id (the workers mark every process they start with it,
// see run-marker.ts and setup.ts), and at the end of the run fails it if any process so marked
// is still alive: one that survived its test file's checks, e.g. because the worker running the
// file was killed before its hooks could run. Survivors are killed, and listed with their
// command lines and the test file that started them.
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { describeProcesses, markedProcesses } from './run-marker.ts';
import { waitFor } from '../wait.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** This vitest run's id, the root of its processes' run markers. */
    capgateTestRun: string;
  }
}

export default function setup(project: TestProject): () => Promise<void> {
  const runId = `run-${process.pid}-${randomBytes(4).toString('hex')}`;
  project.provide('capgateTestRun', runId);
  return async function teardown(): Promise<void> {
    const ours = (t: string): boolean => t === runId;
    // The last workers may still be stopping (vitest stops them while this runs): their after
    // hooks have killed their children, which may take a moment to be gone.
    const clean = await waitFor(
      () => (markedProcesses(ours).length === 0 ? true : undefined),
      "the suite's processes to exit",
      { timeoutMs: 10_000 },
    ).then(
      () => true,
      () => false,
    );
    if (clean) return;
    const left = markedProcesses(ours);
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (left.length === 0) return;
    // vitest reports a teardown error but keeps the exit code of the tests: set it.
    process.exitCode = 1;
    throw new Error(
      `${left.length} process(es) started by this test run were still alive at its end (now killed):\n${describeProcesses(left)}`,
    );
  };
}
