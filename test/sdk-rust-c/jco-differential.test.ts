// Differential check: every scenario through jco's transpiled glue (the reference canonical
// ABI) and through the hand-written host must agree, for the Rust and C builds alike.
import { beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import { runCore } from './harness/run-core.ts';
import { jcoRunner, type JcoRunner } from './harness/run-jco.ts';
import { prebuiltBuilds } from './languages.ts';
import { SCENARIOS } from './scenarios.ts';

describe.each(prebuiltBuilds().map((b) => [`${b.language}/${b.example}`, b] as const))(
  '%s: jco glue agrees',
  (_label, build) => {
    let jco: JcoRunner;
    beforeAll(async () => {
      jco = await jcoRunner(build.component);
    });

    it.each(SCENARIOS[build.example].map((s) => [s.name, s] as const))('%s', (_name, scenario) => {
      const viaJco = jco(scenario.request, createSimulatedCapabilities(scenario.world));
      const viaCore = runCore(build.core, scenario.request, createSimulatedCapabilities(scenario.world));
      expect(viaJco).toEqual(scenario.expected);
      expect(viaCore).toEqual(viaJco);
    });
  },
);
