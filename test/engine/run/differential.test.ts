// Differential test: our canonical-ABI glue (through the engine's workers) against jco's
// transpiled glue for the same component, the same request and the same capability answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../../runtime/capabilities/simulated/capabilities.ts';
import type { SimulatedWorld } from '../../../runtime/capabilities/simulated/world.ts';
import { MEMLOCK_UNLIMITED, type PolicyRequest } from '../../../runtime/contract/types.ts';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { compiledExample, compileStepExists, loadAssemblyScriptExamples } from './fixtures/examples.ts';
import { jcoReference, type ReferenceEvaluate } from './fixtures/jco-reference.ts';
import { compiledFromWat, coreToComponent, fullPolicyWat, watToCore } from './fixtures/wat.ts';
import { OTHER_VM_PROCESS, REQUESTER, request, world } from './fixtures/worlds.ts';

interface Scenario {
  name: string;
  request: PolicyRequest;
  world: SimulatedWorld;
}

const noLabels = world({
  vms: [{ identity: { uuid: 'plain', name: 'plain', id: 3, labels: [] }, pids: [REQUESTER, 4001] }],
});

const SCENARIOS: Scenario[] = [
  { name: 'own VM, 1 GiB', request: request(), world: world() },
  { name: 'own VM, 8 GiB (over memory-bytes + overhead)', request: request({ bytes: 8n << 30n }), world: world() },
  { name: 'own VM, unlimited', request: request({ bytes: MEMLOCK_UNLIMITED }), world: world() },
  { name: 'target in another VM', request: request({ targetPid: OTHER_VM_PROCESS }), world: world() },
  { name: 'target does not exist', request: request({ targetPid: 99999 }), world: world() },
  { name: 'hard limit cannot be raised', request: request(), world: world({ canRaiseHardLimit: false }) },
  { name: 'VM without labels, 2 GiB', request: request({ bytes: 2n << 30n }), world: noLabels },
  { name: 'VM without labels, 8 GiB', request: request({ bytes: 8n << 30n }), world: noLabels },
];

interface Subject {
  name: string;
  policy: CompiledPolicy;
  reference: ReferenceEvaluate;
}

let engine: Engine;
const subjects: Subject[] = [];

beforeAll(async () => {
  engine = new Engine({ workers: 2, linuxCapabilities: false, limits: { deadlineMs: 5_000 } });
  const wat = fullPolicyWat();
  subjects.push({
    name: 'WAT policy using every import',
    policy: compiledFromWat(wat, { deadlineMs: 5_000 }),
    reference: await jcoReference(await coreToComponent(watToCore(wat))),
  });
  for (const ex of await loadAssemblyScriptExamples()) {
    subjects.push({
      name: `AssemblyScript ${ex.name}`,
      policy: await compiledExample(ex, { deadlineMs: 5_000 }),
      reference: await jcoReference(ex.component),
    });
  }
  for (const s of subjects) engine.load(s.policy);
  if (!compileStepExists())
    console.log(
      'differential: compile step not used (absent or CAPGATE_TEST_RAW_CORE=1): AS examples run as uninstrumented core modules',
    );
});

afterAll(async () => {
  await engine.close();
});

describe('our glue agrees with jco', () => {
  it('has every subject', () => {
    expect(subjects.map((s) => s.name)).toEqual([
      'WAT policy using every import',
      'AssemblyScript memlock-cap',
      'AssemblyScript vfio-only',
    ]);
  });

  for (const scenario of SCENARIOS) {
    it(scenario.name, async () => {
      for (const s of subjects) {
        const expected = await s.reference(scenario.request, createSimulatedCapabilities(scenario.world));
        const got = await engine.evaluate(s.policy.sha256, scenario.request, {
          kind: 'simulated',
          world: scenario.world,
        });
        expect(got.errorDetail, s.name).toBeUndefined();
        const ours = got.decision === 'allow' ? { kind: 'allow' } : { kind: 'deny', reason: got.reason };
        expect(ours, s.name).toEqual(expected.decision);
        expect(got.capabilityCalls, s.name).toEqual(expected.capabilityCalls);
        expect(got.logs, s.name).toEqual(expected.logs);
      }
    });
  }

  it('the scenarios reach both allow and deny, and capability errors, for every subject', async () => {
    for (const s of subjects) {
      const outcomes = await Promise.all(
        SCENARIOS.map((sc) => engine.evaluate(s.policy.sha256, sc.request, { kind: 'simulated', world: sc.world })),
      );
      expect(
        outcomes.some((o) => o.decision === 'allow'),
        s.name,
      ).toBe(true);
      expect(
        outcomes.some((o) => o.decision === 'deny'),
        s.name,
      ).toBe(true);
      expect(
        outcomes.some((o) => o.capabilityCalls.some((c) => c.op === 'set-memlock' && c.result === 'not-permitted')),
        s.name,
      ).toBe(true);
    }
  });
});
