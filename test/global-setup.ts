// vitest globalSetup: builds the AssemblyScript example guests once before any test file runs,
// so tests use real compiled policies; rebuilds only what is older than its sources (SDK, WIT,
// examples, build script). Rust and C tests use their committed prebuilt components and build
// from source in their own tests, so their (optional, slow) toolchains are not run here.
import { buildGuests, formatBuilt } from '../scripts/build-guests.ts';

export default async function setup(): Promise<void> {
  const guests = await buildGuests(['assemblyscript'], { onlyIfStale: true });
  const rebuilt = guests.filter((g) => !g.upToDate);
  if (rebuilt.length > 0) console.log(`global-setup built guests:\n${formatBuilt(rebuilt)}`);
}
