// InstanceFactory: instances of one policy share their host imports, yet each evaluation sees
// only its own state; a prepared instance is used once; a broken memory plan fails closed.
import { describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../../runtime/capabilities/simulated/capabilities.ts';
import { evaluatePrepared } from '../../../runtime/engine/evaluate-instance.ts';
import { InstanceFactory } from '../../../runtime/engine/instance-factory.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { compiledFromWat, fullPolicyWat, IMPORTS, watToCore } from './fixtures/wat.ts';
import { OTHER_VM_PROCESS, request, world } from './fixtures/worlds.ts';

describe('InstanceFactory', () => {
  const policy = compiledFromWat(fullPolicyWat());

  it('shares the host imports between instances, but never an evaluation state', () => {
    const factory = new InstanceFactory(policy.module);
    const a = factory.prepare();
    const b = factory.prepare();
    expect(b.holder).toBe(a.holder);
    const first = evaluatePrepared(a, request(), createSimulatedCapabilities(world()), policy.limits);
    expect(first).toMatchObject({ decision: 'allow' });
    expect(first.capabilityCalls).toHaveLength(2);
    expect(a.holder.state).toBeUndefined(); // cleared: a stray host call now traps
    const second = evaluatePrepared(
      b,
      request({ targetPid: OTHER_VM_PROCESS }),
      createSimulatedCapabilities(world()),
      policy.limits,
    );
    expect(second).toMatchObject({ decision: 'deny', reason: 'target-not-in-requester-vm' });
    expect(second.capabilityCalls).toEqual([{ op: 'query-vm-identity', pid: OTHER_VM_PROCESS, result: 'none' }]);
    expect(second.logs).toEqual([{ level: 'info', message: 'evaluating' }]);
  });

  it('refuses a prepared instance used twice', () => {
    const factory = new InstanceFactory(policy.module);
    const a = factory.prepare();
    evaluatePrepared(a, request(), createSimulatedCapabilities(world()), policy.limits);
    expect(evaluatePrepared(a, request(), createSimulatedCapabilities(world()), policy.limits)).toMatchObject({
      decision: 'deny',
      errorKind: 'host-error',
      errorDetail: expect.stringMatching(/used twice/),
    });
  });

  it('a module importing the engine memory without its plan section is a deny, not a crash', () => {
    const wat = `(module ${IMPORTS}
      (import "capgate:engine" "memory" (memory 1 2))
      (export "memory" (memory 0))
      (func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) (i32.const 1024)))`;
    const factory = new InstanceFactory(new WebAssembly.Module(watToCore(wat)));
    const o = evaluatePrepared(factory.prepare(), request(), createSimulatedCapabilities(world()), DEFAULT_LIMITS);
    expect(o).toMatchObject({
      decision: 'deny',
      errorKind: 'host-error',
      errorDetail: expect.stringMatching(/capgate:memory-plan/),
    });
  });
});
