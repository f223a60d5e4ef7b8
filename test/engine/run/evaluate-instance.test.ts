// One evaluation in-thread: lifting/lowering of every import and of the decision, and the
// ABI violations a hostile guest can commit, each an invalid-abi deny (never a host crash).
import { describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../../runtime/capabilities/simulated/capabilities.ts';
import { evaluateOnce } from '../../support/evaluate-once.ts';
import type { EngineLimits } from '../../../runtime/engine/limits.ts';
import type { Outcome } from '../../../runtime/engine/outcome.ts';
import { CHARGE, compiledFromWat, fullPolicyWat, policyWat } from './fixtures/wat.ts';
import { OTHER_VM_PROCESS, request, VM_PROCESS, world } from './fixtures/worlds.ts';

function run(wat: string, limits: Partial<EngineLimits> = {}, req = request(), w = world()): Outcome {
  const p = compiledFromWat(wat, limits);
  return evaluateOnce(p.module, req, createSimulatedCapabilities(w), p.limits);
}

/** A policy whose evaluate body is `body` (must leave an i32 retptr). */
function evaluateBody(body: string, extra = ''): string {
  return policyWat(`${extra}
  (func (export "evaluate") (param $op i32) (param $rpid i32) (param $ruid i32) (param $tpid i32) (param $bytes i64) (result i32)
    ${CHARGE}
    ${body})`);
}

describe('evaluateOnce: a policy using every import', () => {
  it('a query-vm-identity that fails in the host is a host-error deny whose detail is recorded, never a silent none', () => {
    const p = compiledFromWat(fullPolicyWat());
    const simulated = createSimulatedCapabilities(world());
    const failing = {
      setMemlock: (pid: number, bytes: bigint) => simulated.setMemlock(pid, bytes),
      queryVmIdentity: (): never => {
        throw new Error('pidfd_open: EMFILE');
      },
    };
    const o = evaluateOnce(p.module, request(), failing, p.limits);
    expect(o).toMatchObject({
      decision: 'deny',
      errorKind: 'host-error',
      errorDetail: expect.stringMatching(/query-vm-identity failed in the host: pidfd_open: EMFILE/),
    });
    expect(o.capabilityCalls.filter((c) => c.op === 'set-memlock')).toEqual([]); // the policy went no further
  });

  it('allows, lowering the VM identity (UTF-8 name, labels) and recording calls and logs', () => {
    const o = run(fullPolicyWat());
    expect(o.errorDetail).toBeUndefined();
    expect(o.decision).toBe('allow');
    expect(o.reason).toBe('');
    expect(o.capabilityCalls).toEqual([
      { op: 'query-vm-identity', pid: VM_PROCESS, result: 'some', vmUuid: '6f1c2a4e-0000-4000-8000-000000000001' },
      { op: 'set-memlock', pid: VM_PROCESS, bytes: 1n << 30n, result: 'ok' },
    ]);
    expect(o.logs).toEqual([
      { level: 'info', message: 'evaluating' },
      { level: 'debug', message: 'vm-ünïcode-α' },
      { level: 'debug', message: 'vfio' },
      { level: 'debug', message: 'true' },
      { level: 'debug', message: 'memory-bytes' },
      { level: 'debug', message: '4294967296' },
      { level: 'debug', message: 'emoji' },
      { level: 'debug', message: '🦀' },
      { level: 'info', message: 'memlock raised' },
    ]);
    expect(o.fuelUsed).toBeGreaterThan(0);
  });

  it('denies with the policy reason when the target is outside the VM', () => {
    const o = run(fullPolicyWat(), {}, request({ targetPid: OTHER_VM_PROCESS }));
    expect(o).toMatchObject({ decision: 'deny', reason: 'target-not-in-requester-vm' });
    expect(o.errorKind).toBeUndefined();
    expect(o.capabilityCalls).toEqual([{ op: 'query-vm-identity', pid: OTHER_VM_PROCESS, result: 'none' }]);
  });

  it('lowers a capability error enum the guest turns into its reason', () => {
    const o = run(fullPolicyWat(), {}, request(), world({ canRaiseHardLimit: false }));
    expect(o).toMatchObject({ decision: 'deny', reason: 'not-permitted' });
    expect(o.capabilityCalls[1]).toMatchObject({ op: 'set-memlock', result: 'not-permitted' });
  });

  it('passes u32 pids and u64 bytes above the signed range unchanged', () => {
    const big = 0xffff_ffff_ffff_fff0n;
    const o = run(fullPolicyWat(), {}, request({ bytes: big, targetPid: 0xffff_fff0 }));
    expect(o.capabilityCalls).toEqual([{ op: 'query-vm-identity', pid: 0xffff_fff0, result: 'none' }]);
    const o2 = run(fullPolicyWat(), {}, request({ bytes: big }));
    expect(o2.capabilityCalls[1]).toMatchObject({ op: 'set-memlock', bytes: big });
  });

  it('keeps at most maxLogLines log lines and counts the rest', () => {
    const o = run(fullPolicyWat(), { maxLogLines: 3 });
    expect(o.logs).toHaveLength(3);
    expect(o.droppedLogLines).toBe(6);
    expect(o.decision).toBe('allow');
  });
});

describe('evaluateOnce: ABI violations are invalid-abi denies', () => {
  const cases: Array<[string, string, string?]> = [
    ['evaluate returns a pointer outside memory', '(i32.const 0x7fff0000)'],
    ['evaluate returns a pointer at the very end of memory', '(i32.const 65532)'],
    ['evaluate returns a misaligned pointer', '(i32.store8 (i32.const 2049) (i32.const 0)) (i32.const 2049)'],
    ['decision discriminant 7', '(i32.store8 (i32.const 2048) (i32.const 7)) (i32.const 2048)'],
    ['deny string pointer outside memory', '(call $deny (i32.const 0x10000000) (i32.const 4))'],
    ['deny string running past the end of memory', '(call $deny (i32.const 65530) (i32.const 16))'],
    ['deny string claiming 100 MB', '(call $deny (i32.const 16) (i32.const 100000000))'],
    [
      'deny string that is not UTF-8',
      '(i32.store (i32.const 16) (i32.const 0x80c0ff41)) (call $deny (i32.const 16) (i32.const 4))',
    ],
    ['log level 9', '(call $log (i32.const 9) (i32.const 16) (i32.const 1)) (call $allow)'],
    ['log message outside memory', '(call $log (i32.const 1) (i32.const -16) (i32.const 8)) (call $allow)'],
    [
      'set-memlock return area outside memory',
      '(call $set_memlock (local.get $tpid) (local.get $bytes) (i32.const 70000)) (call $allow)',
    ],
    ['query-vm-identity return area misaligned', '(call $query (local.get $tpid) (i32.const 1026)) (call $allow)'],
  ];
  for (const [name, body] of cases) {
    it(name, () => {
      const o = run(evaluateBody(body));
      expect(o.decision).toBe('deny');
      expect(o.errorKind, o.errorDetail).toBe('invalid-abi');
      expect(o.reason).toBe('invalid-abi');
      expect(o.errorDetail).toBeTruthy();
    });
  }

  it('a set-memlock with a bad return area never reaches the capability', () => {
    const o = run(
      evaluateBody('(call $set_memlock (local.get $tpid) (local.get $bytes) (i32.const 70000)) (call $allow)'),
    );
    expect(o.capabilityCalls).toEqual([]);
  });

  it('cabi_realloc returning an out-of-range pointer', () => {
    const wat = policyWat(`
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0xfffffff0))
  (func (export "evaluate") (param $op i32) (param $rpid i32) (param $ruid i32) (param $tpid i32) (param $bytes i64) (result i32)
    (call $query (local.get $tpid) (i32.const 1024))
    (call $allow))`).replace(/\(func \(export "cabi_realloc"\)[\s\S]*?\(local\.get \$p\)\)/, '');
    const o = run(wat);
    expect(o.errorKind, o.errorDetail).toBe('invalid-abi');
    expect(o.errorDetail).toMatch(/cabi_realloc returned/);
  });

  it('log level 4, one past the last level', () => {
    const o = run(evaluateBody('(call $log (i32.const 4) (i32.const 16) (i32.const 1)) (call $allow)'));
    expect(o.errorKind).toBe('invalid-abi');
  });
});
