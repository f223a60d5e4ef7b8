// `npm run bench [section...]`: runs every benchmark section (or the named ones) and prints
// their tables. A section is a module in scripts/bench/ exporting `run(): Promise<void>`;
// add yours to SECTIONS.
const SECTIONS: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  engine: () => import('./bench/engine.ts'),
  languages: () => import('./bench/policy-languages.ts'),
  fuel: () => import('./bench/fuel-overhead.ts'),
  capabilities: () => import('./bench/capabilities.ts'),
  daemon: () => import('./bench/daemon.ts'),
  pidns: () => import('./bench/pid-namespaces.ts'),
  cli: () => import('./bench/cli-startup.ts'),
  isolation: () => import('./bench/isolation.ts'),
  verify: () => import('./bench/core-verify.ts'),
  upload: () => import('./bench/upload-time.ts'),
  garbage: () => import('./bench/garbage.ts'),
  'idle-turns': () => import('./bench/idle-turns.ts'),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in SECTIONS));
if (unknown.length > 0) {
  console.error(`unknown bench section(s): ${unknown.join(', ')}; available: ${Object.keys(SECTIONS).join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : Object.keys(SECTIONS)) {
  const section = await SECTIONS[name]!();
  await section.run();
}
