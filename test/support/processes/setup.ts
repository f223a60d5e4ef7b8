// vitest setupFiles, run in the worker before each test file: marks the processes this file
// starts (run-marker.ts), kills them after each test and after the file (children.ts), and fails
// the file if any process it started is still alive after that: one that escaped the registry.
// Registered before the file's own hooks, so after-hooks here run after the file's (a graceful
// stop first, then the kill).
import { afterAll, afterEach, beforeEach, expect, inject } from 'vitest';
import path from 'node:path';
import { killChildren, killChildrenNow, setTestScope } from './children.ts';
import { waitFor } from '../wait.ts';
import { describeProcesses, fileToken, markedProcesses, RUN_MARKER, withTokens } from './run-marker.ts';

const runId = inject('capgateTestRun');
const testFile = path.relative(process.cwd(), expect.getState().testPath ?? 'unknown');
const token = fileToken(runId, testFile);
process.env[RUN_MARKER] = withTokens(process.env[RUN_MARKER], runId, token);

// vitest stops a worker with SIGTERM (SIGKILL 500 ms later); Ctrl-C sends SIGINT to the whole
// foreground group, but not to our children, each in its own session. Node's default for these
// signals exits without 'exit' handlers: kill the children first, then exit as the signal would.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killChildrenNow();
    process.kill(process.pid, signal);
  });
}

beforeEach(() => setTestScope(true));

afterEach(async () => {
  setTestScope(false);
  await killChildren('test');
});

afterAll(async () => {
  await killChildren('all');
  // Whatever still carries this file's marker escaped the registry (spawned without
  // children.ts, or re-parented out of its tree by a double fork and a setsid). A process
  // dies a little after its SIGKILL, so give those of the kill above a moment.
  const mine = (t: string): boolean => t === token;
  const left = await waitFor(
    () => (markedProcesses(mine).length === 0 ? true : undefined),
    'the killed children to exit',
    { timeoutMs: 5_000 },
  ).then(
    () => [],
    () => markedProcesses(mine),
  );
  if (left.length === 0) return;
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(
    `${testFile} left processes behind (now killed); start every child with test/support/processes/children.ts:\n${describeProcesses(left)}`,
  );
});
