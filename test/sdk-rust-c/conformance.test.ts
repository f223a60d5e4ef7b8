// Conformance: every example scenario run against the AssemblyScript, Rust and C builds must give
// identical decisions, reasons, capability calls and logs — through the hand-written host, through
// jco's glue, and through the real Engine (worker pool, instrumentation) with a simulated world.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import type { Outcome } from '../../runtime/engine/outcome.ts';
import { readPrebuilt, SDK_EXAMPLES, SDK_REPO_ROOT } from '../../scripts/build-guests/prebuilt.ts';
import { policyCoreModule } from './harness/core-module.ts';
import { runCore, type CoreRun } from './harness/run-core.ts';
import { jcoRunner } from './harness/run-jco.ts';
import { SCENARIOS, type ExampleName } from './scenarios.ts';

const LANGUAGES = ['assemblyscript', 'rust', 'c'] as const;
type Language = (typeof LANGUAGES)[number];

/** AS examples are built by the vitest global setup; Rust and C come from the committed prebuilt/. */
function component(lang: Language, example: ExampleName): Uint8Array {
  if (lang !== 'assemblyscript') return readPrebuilt(lang, example);
  const path = join(SDK_REPO_ROOT, 'guest-examples', 'assemblyscript', 'build', `${example}.wasm`);
  if (!existsSync(path))
    throw new Error(`missing ${path}: run \`npm run build:guests\` (the vitest global setup normally does)`);
  return new Uint8Array(readFileSync(path));
}

/** What must be identical across languages (the engine's `detail` strings come from the host). */
function observable(o: CoreRun | Outcome): CoreRun {
  return {
    decision: o.decision,
    reason: o.reason,
    capabilityCalls: o.capabilityCalls.map((c) =>
      c.op === 'set-memlock' ? { op: c.op, pid: c.pid, bytes: c.bytes, result: c.result } : c,
    ),
    logs: o.logs,
  };
}

describe.each(SDK_EXAMPLES.map((e) => [e]))('%s in every language', (example) => {
  const scenarios = SCENARIOS[example];

  it.each(scenarios.map((s) => [s.name, s] as const))(
    '%s: same behaviour through the hand-written host and jco',
    async (_name, s) => {
      for (const lang of LANGUAGES) {
        const bytes = component(lang, example);
        const viaCore = runCore(policyCoreModule(bytes), s.request, createSimulatedCapabilities(s.world));
        const viaJco = (await jcoRunner(bytes))(s.request, createSimulatedCapabilities(s.world));
        expect(viaCore, `${lang} via the hand-written host`).toEqual(s.expected);
        expect(viaJco, `${lang} via jco`).toEqual(s.expected);
      }
    },
  );
});

describe('through the real Engine (simulated capabilities)', () => {
  let engine: Engine;
  const sha = new Map<string, string>();

  beforeAll(async () => {
    // Behaviour, not speed: a generous deadline so a loaded CI machine cannot turn a decision into a timeout.
    engine = new Engine({ workers: 1, linuxCapabilities: false, limits: { deadlineMs: 10_000 } });
    for (const lang of LANGUAGES) {
      for (const example of SDK_EXAMPLES) {
        const r = await engine.compile(component(lang, example));
        if (!r.ok) throw new Error(`engine refused ${lang}/${example}: ${r.kind}: ${r.message}`);
        sha.set(`${lang}/${example}`, r.policy.sha256);
      }
    }
  });
  afterAll(async () => {
    await engine?.close();
  });

  describe.each(SDK_EXAMPLES.map((e) => [e]))('%s', (example) => {
    it.each(SCENARIOS[example].map((s) => [s.name, s] as const))('%s', async (_name, s) => {
      for (const lang of LANGUAGES) {
        const o = await engine.evaluate(sha.get(`${lang}/${example}`)!, s.request, {
          kind: 'simulated',
          world: s.world,
        });
        expect(o.errorKind, `${lang}: ${o.errorDetail ?? ''}`).toBeUndefined();
        expect(observable(o), lang).toEqual(s.expected);
      }
    });
  });
});
