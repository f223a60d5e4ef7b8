import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds the AssemblyScript example guests (guest-examples/assemblyscript/build/) once, before any test file.
    globalSetup: ['test/global-setup.ts'],
    // Guest builds and real daemons make some suites slow to start; none asserts wall-clock time.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Tests spawn real processes and daemons; two cores, so keep files from oversubscribing them.
    maxWorkers: 2,
    pool: 'forks',
  },
});
