// vfio-only (guest-examples/README.md), compiled from AssemblyScript, rule by rule.
import { describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import { CAPABILITY_ERRORS, MEMLOCK_UNLIMITED } from '../../runtime/contract/types.ts';
import { CoreHarness } from './core-harness.ts';
import { FOREIGN, GiB, TARGET, coreModule, failingSetMemlock, request, world } from './fixtures.ts';

const module = coreModule('vfio-only');

async function run(labels: Array<[string, string]>, bytes: bigint, targetPid = TARGET, canRaiseHardLimit = true) {
  const h = await CoreHarness.instantiate(module, createSimulatedCapabilities(world(labels, { canRaiseHardLimit })));
  return h.evaluate(request(bytes, targetPid));
}

describe('vfio-only (AssemblyScript)', () => {
  it('rule 1: denies an operation other than set-memlock without calling the host', async () => {
    const h = await CoreHarness.instantiate(module, createSimulatedCapabilities(world([['vfio', 'true']])));
    const r = h.evaluate({ ...request(GiB), operation: 3 });
    expect(r.decision).toEqual({ kind: 'deny', reason: 'unsupported-operation' });
    expect(r.calls).toEqual([]);
  });

  it('rule 2: denies a target outside the requester VM', async () => {
    const r = await run([['vfio', 'true']], GiB, FOREIGN);
    expect(r.decision).toEqual({ kind: 'deny', reason: 'target-not-in-requester-vm' });
    expect(r.calls).toEqual([{ op: 'query-vm-identity', pid: FOREIGN, result: 'none' }]);
  });

  for (const labels of [
    [],
    [['vfio', 'false']],
    [['vfio', 'True']],
    [['vfio', 'true ']],
    [['vfio', '']],
    [['vfio-x', 'true']],
  ] as Array<Array<[string, string]>>) {
    it(`rule 3: labels ${JSON.stringify(labels)} -> vm-not-vfio, no set-memlock`, async () => {
      const r = await run(labels, GiB);
      expect(r.decision).toEqual({ kind: 'deny', reason: 'vm-not-vfio' });
      expect(r.calls.map((c) => c.op)).toEqual(['query-vm-identity']);
      expect(r.logs).toEqual([]);
    });
  }

  it('rule 4: set-memlock refused by the host -> set-memlock-failed: <error>', async () => {
    const r = await run([['vfio', 'true']], MEMLOCK_UNLIMITED, TARGET, false);
    expect(r.decision).toEqual({ kind: 'deny', reason: 'set-memlock-failed: not-permitted' });
    for (const error of CAPABILITY_ERRORS) {
      const caps = failingSetMemlock(createSimulatedCapabilities(world([['vfio', 'true']])), error);
      const d = (await CoreHarness.instantiate(module, caps)).evaluate(request(GiB)).decision;
      expect(d).toEqual({ kind: 'deny', reason: `set-memlock-failed: ${error}` });
    }
  });

  it('rule 5: vfio=true gets unlimited whatever it asked for, logs and allows', async () => {
    const r = await run(
      [
        ['name', 'x'],
        ['vfio', 'true'],
      ],
      GiB,
    );
    expect(r.decision).toEqual({ kind: 'allow' });
    expect(r.calls).toEqual([
      { op: 'query-vm-identity', pid: TARGET, result: 'some', vmUuid: 'c0ffee00-0000-4000-8000-000000000001' },
      { op: 'set-memlock', pid: TARGET, bytes: MEMLOCK_UNLIMITED, result: 'ok' },
    ]);
    expect(r.logs).toEqual([{ level: 'info', message: 'vfio memlock set to unlimited' }]);
  });
});
