// vitest globalSetup, once before any test file:
// - compiles capgate (`npm run build`: tsc -b, a no-op when dist/ is newer than every source), so
//   the tests that start processes (the bin, the daemon, its workers) run the compiled JavaScript
//   that ships, never a stale build; tests that import modules in-process use vitest's transform.
// - builds the AssemblyScript example guests, so tests use real compiled policies; rebuilds only
//   what is older than its sources (SDK, WIT, examples, build script). Rust and C tests use their
//   committed prebuilt components and build from source in their own tests, so their (optional,
//   slow) toolchains are not run here.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { PACKAGE_ROOT } from '../runtime/bootstrap/package-root.ts';
import { buildGuests, formatBuilt } from '../scripts/build-guests.ts';

export default async function setup(): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], {
      cwd: PACKAGE_ROOT,
      stdio: 'pipe',
      encoding: 'utf8',
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(
      `global-setup: \`npm run build\` failed, so the compiled capgate the process tests run would be stale:\n${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
  }
  const guests = await buildGuests(['assemblyscript'], { onlyIfStale: true });
  const rebuilt = guests.filter((g) => !g.upToDate);
  if (rebuilt.length > 0) console.log(`global-setup built guests:\n${formatBuilt(rebuilt)}`);
}
