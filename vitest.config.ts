import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds the AssemblyScript example guests (guest-examples/assemblyscript/build/) once, before
    // any test file; gives the run an id that marks every process it starts, and fails the run if
    // any of them outlives it (test/support/processes/).
    globalSetup: ['test/global-setup.ts', 'test/support/processes/leak-check.ts'],
    // Kills the processes each test and each file started, and fails a file that left one behind.
    setupFiles: ['test/support/processes/setup.ts'],
    // Guest builds and real daemons make some suites slow to start; none asserts wall-clock time.
    // Above the daemon's own bound for a compile (its wall-clock cap, 120 s: at SCHED_IDLE on a
    // busy host an upload may wait that long before the 503), so a test that pushes a policy while
    // the rest of the suite keeps both cores busy is not cut short before the daemon answers.
    testTimeout: 150_000,
    hookTimeout: 180_000,
    // Tests spawn real processes and daemons; two cores, so keep files from oversubscribing them.
    maxWorkers: 2,
    pool: 'forks',
  },
});
