// The suite's process checks, proven on vitest itself: each fixture (fixtures/*.fixture.ts,
// outside the suite's include) runs in a vitest of its own with the suite's globalSetup and
// setupFiles, and the test reads its exit code and output. A file that leaks fails, a run that
// leaks fails even when every test passed, a worker killed outright takes its children along
// (PDEATHSIG) and the run catches what they had started, and a test that times out leaves
// nothing behind.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../cli/support/run-cli.ts';
import { runChild, type ChildRun } from './children.ts';
import { markedProcesses, RUN_MARKER, tokensOf } from './run-marker.ts';

const FIXTURES = 'test/support/processes/fixtures';
const VITEST = path.join(REPO_ROOT, 'node_modules/vitest/vitest.mjs');
const FIXTURE_NAMES = ['clean', 'timeout', 'untracked', 'worker-killed', 'run-only'] as const;

const runs = new Map<string, ChildRun & { output: string }>();

beforeAll(async () => {
  // Concurrently: two of them wait out a check's budget for a leak to exit by itself.
  await Promise.all(
    FIXTURE_NAMES.map(async (name) => {
      const r = await runChild(
        process.execPath,
        [VITEST, 'run', '--config', `${FIXTURES}/vitest.config.ts`, `${FIXTURES}/${name}.fixture.ts`],
        {
          cwd: REPO_ROOT,
          env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
        },
      );
      runs.set(name, { ...r, output: r.stdout + r.stderr });
    }),
  );
}, 120_000);

/** Every fixture's sleeps are `sleep 36NN`; none may be alive once its vitest has exited. */
function survivingSleeps(): string[] {
  const mine = tokensOf(process.env[RUN_MARKER]).at(-1)!;
  return markedProcesses((t) => t === mine)
    .map((p) => p.cmdline)
    .filter((c) => /^sleep 36\d\d$/.test(c));
}

const LEFT_BY_FILE = 'left processes behind (now killed)';
const LEFT_AT_END = 'still alive at its end (now killed)';

describe("the suite's process checks", () => {
  it("pass a file whose children went through children.ts, and kill a test's children after it", () => {
    const r = runs.get('clean')!;
    expect(r.code, r.output).toBe(0);
    expect(r.output).not.toContain(LEFT_BY_FILE);
    expect(r.output).not.toContain(LEFT_AT_END);
  });

  it('leave nothing behind when a test times out waiting on its child', () => {
    const r = runs.get('timeout')!;
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain('Test timed out in 1000ms');
    expect(r.output).not.toContain(LEFT_BY_FILE);
    expect(r.output).not.toContain(LEFT_AT_END);
  });

  it("fail the file that started a process behind the registry's back, naming it", () => {
    const r = runs.get('untracked')!;
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain(`${FIXTURES}/untracked.fixture.ts ${LEFT_BY_FILE}`);
    expect(r.output).toMatch(
      /pid \d+ \(ppid \d+, pgid \d+\) sleep 3630 {2}\[started by [^\]]*test\/support\/processes\/fixtures\/untracked\.fixture\.ts\]/,
    );
  });

  it('kill the direct children of a worker killed outright, and fail the run on their orphans', () => {
    const r = runs.get('worker-killed')!;
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toContain(LEFT_AT_END);
    expect(r.output).toMatch(
      /sleep 3641 {2}\[started by [^\]]*test\/support\/processes\/fixtures\/worker-killed\.fixture\.ts\]/,
    );
    // The worker's own children died with it (PDEATHSIG), before the end of the run looked.
    expect(r.output).not.toContain('sleep 3640');
  });

  it('fail a run whose tests all passed when a process it started outlives it', () => {
    const r = runs.get('run-only')!;
    expect(r.output).toMatch(/Tests {2}1 passed \(1\)/);
    expect(r.output).toContain(`1 process(es) started by this test run were ${LEFT_AT_END}`);
    expect(r.output).toContain('sleep 3650');
    expect(r.code, r.output).toBe(1);
  });

  it("left none of the fixtures' processes alive", () => {
    expect(survivingSleeps()).toEqual([]);
  });
});
