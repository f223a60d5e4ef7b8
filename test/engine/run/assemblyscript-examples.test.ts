// The AssemblyScript example policies end to end: component bytes -> Engine.compile (validation,
// instrumentation) -> worker -> decision, on their allow and deny paths.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEMLOCK_UNLIMITED } from '../../../runtime/contract/types.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { loadAssemblyScriptExamples } from './fixtures/examples.ts';
import { OTHER_VM_PROCESS, REQUESTER, request, simulated, VM_PROCESS } from './fixtures/worlds.ts';

let engine: Engine;
const sha = new Map<string, string>();

beforeAll(async () => {
  engine = new Engine({ workers: 2, linuxCapabilities: false, limits: { deadlineMs: 5_000 } });
  for (const ex of await loadAssemblyScriptExamples()) {
    const r = await engine.compile(ex.component);
    if (!r.ok) throw new Error(`${ex.name} did not compile: ${r.kind}: ${r.message}`);
    sha.set(ex.name, r.policy.sha256);
  }
});

afterAll(async () => {
  await engine.close();
});

const plainVm = simulated({
  vms: [{ identity: { uuid: 'plain', name: 'plain', id: 3, labels: [] }, pids: [REQUESTER, VM_PROCESS] }],
});

describe('memlock-cap', () => {
  const evaluate =
    (...a: Parameters<typeof request>) =>
    (spec = simulated()) =>
      engine.evaluate(sha.get('memlock-cap')!, request(...a), spec);

  it('allows up to memory-bytes plus overhead and raises the limit', async () => {
    const o = await evaluate({ bytes: 4n << 30n })();
    expect(o).toMatchObject({ decision: 'allow', reason: '' });
    expect(o.errorKind).toBeUndefined();
    expect(o.fuelUsed).toBeGreaterThan(0);
    expect(o.capabilityCalls).toEqual([
      { op: 'query-vm-identity', pid: VM_PROCESS, result: 'some', vmUuid: '6f1c2a4e-0000-4000-8000-000000000001' },
      { op: 'set-memlock', pid: VM_PROCESS, bytes: 4n << 30n, result: 'ok' },
    ]);
    expect(o.logs).toEqual([{ level: 'info', message: 'memlock raised' }]);
  });

  it('denies over the cap without touching the limit', async () => {
    const o = await evaluate({ bytes: 8n << 30n })();
    expect(o).toMatchObject({ decision: 'deny', reason: 'over-cap' });
    expect(o.capabilityCalls.map((c) => c.op)).toEqual(['query-vm-identity']);
    expect(o.logs.map((l) => l.level)).toEqual(['warn']);
  });

  it('denies a target outside the requester VM', async () => {
    const o = await evaluate({ targetPid: OTHER_VM_PROCESS })();
    expect(o).toMatchObject({ decision: 'deny', reason: 'target-not-in-requester-vm' });
  });

  it('denies a VM without the memory-bytes label', async () => {
    expect(await evaluate()(plainVm)).toMatchObject({ decision: 'deny', reason: 'missing-memory-bytes-label' });
  });

  it('turns a capability error into the reason', async () => {
    const o = await evaluate()(simulated({ canRaiseHardLimit: false }));
    expect(o).toMatchObject({ decision: 'deny', reason: 'set-memlock-failed: not-permitted' });
  });
});

describe('vfio-only', () => {
  const evaluate = (spec = simulated()) => engine.evaluate(sha.get('vfio-only')!, request(), spec);

  it('grants unlimited memlock to a vfio VM', async () => {
    const o = await evaluate();
    expect(o).toMatchObject({ decision: 'allow' });
    expect(o.capabilityCalls[1]).toEqual({
      op: 'set-memlock',
      pid: VM_PROCESS,
      bytes: MEMLOCK_UNLIMITED,
      result: 'ok',
    });
  });

  it('denies a VM without vfio=true', async () => {
    const o = await evaluate(plainVm);
    expect(o).toMatchObject({ decision: 'deny', reason: 'vm-not-vfio' });
    expect(o.capabilityCalls.map((c) => c.op)).toEqual(['query-vm-identity']);
  });

  it('uses the same fuel for the same input', async () => {
    const [a, b] = await Promise.all([evaluate(), evaluate()]);
    expect(a!.fuelUsed).toBe(b!.fuelUsed);
    expect(a!.fuelUsed).toBeGreaterThan(0);
  });
});
