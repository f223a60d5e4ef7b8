// memlock-cap (guest-examples/README.md), compiled from AssemblyScript, rule by rule.
import { describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import { CAPABILITY_ERRORS, MEMLOCK_UNLIMITED } from '../../runtime/contract/types.ts';
import { CoreHarness } from './core-harness.ts';
import { FOREIGN, GiB, TARGET, coreModule, failingSetMemlock, request, world } from './fixtures.ts';

const MEM = 'memory-bytes';
const OVERHEAD = 256n * 1024n * 1024n;
const module = coreModule('memlock-cap');

async function run(labels: Array<[string, string]>, bytes: bigint, targetPid = TARGET) {
  const caps = createSimulatedCapabilities(world(labels));
  const h = await CoreHarness.instantiate(module, caps);
  return h.evaluate(request(bytes, targetPid));
}

describe('memlock-cap (AssemblyScript)', () => {
  it('rule 1: denies an operation other than set-memlock without calling the host', async () => {
    const h = await CoreHarness.instantiate(module, createSimulatedCapabilities(world([])));
    const r = h.evaluate({ ...request(GiB), operation: 1 });
    expect(r.decision).toEqual({ kind: 'deny', reason: 'unsupported-operation' });
    expect(r.calls).toEqual([]);
    expect(r.logs).toEqual([]);
  });

  it('rule 2: denies a target outside the requester VM after one query', async () => {
    const r = await run([], GiB, FOREIGN);
    expect(r.decision).toEqual({ kind: 'deny', reason: 'target-not-in-requester-vm' });
    expect(r.calls).toEqual([{ op: 'query-vm-identity', pid: FOREIGN, result: 'none' }]);
  });

  it('rules 3+4+7: memory-bytes plus 256 MiB overhead is allowed, sets the limit and logs', async () => {
    const r = await run(
      [
        ['other', 'x'],
        [MEM, String(GiB)],
      ],
      GiB + OVERHEAD,
    );
    expect(r.decision).toEqual({ kind: 'allow' });
    expect(r.calls).toEqual([
      { op: 'query-vm-identity', pid: TARGET, result: 'some', vmUuid: 'c0ffee00-0000-4000-8000-000000000001' },
      { op: 'set-memlock', pid: TARGET, bytes: GiB + OVERHEAD, result: 'ok' },
    ]);
    expect(r.logs).toEqual([{ level: 'info', message: 'memlock raised' }]);
  });

  it('rule 5: one byte over memory-bytes plus overhead -> warn log, over-cap, no set-memlock', async () => {
    const r = await run([[MEM, String(GiB)]], GiB + OVERHEAD + 1n);
    expect(r.decision).toEqual({ kind: 'deny', reason: 'over-cap' });
    expect(r.logs).toEqual([{ level: 'warn', message: 'request exceeds memory-bytes plus overhead' }]);
    expect(r.calls.map((c) => c.op)).toEqual(['query-vm-identity']);
  });

  const invalid: Array<[string, Array<[string, string]>]> = [
    ['missing', []],
    ['empty', [[MEM, '']]],
    ['non-digit', [[MEM, '12a']]],
    ['signed', [[MEM, '+5']]],
    ['21 digits', [[MEM, '000000000000000000001']]],
    ['overflowing u64', [[MEM, '18446744073709551616']]],
  ];
  for (const [what, labels] of invalid) {
    it(`rule 3: ${what} memory-bytes label -> missing-memory-bytes-label, no set-memlock`, async () => {
      const r = await run(labels, 1n);
      expect(r.decision).toEqual({ kind: 'deny', reason: 'missing-memory-bytes-label' });
      expect(r.calls.map((c) => c.op)).toEqual(['query-vm-identity']);
    });
  }

  it('rule 4: the cap saturates at u64 max (unlimited allowed for a huge memory-bytes)', async () => {
    const r = await run([[MEM, '18446744073709551615']], MEMLOCK_UNLIMITED);
    expect(r.decision).toEqual({ kind: 'allow' });
    expect(r.calls[1]).toEqual({ op: 'set-memlock', pid: TARGET, bytes: MEMLOCK_UNLIMITED, result: 'ok' });
  });

  it('rule 3: a 0 memory-bytes leaves only the overhead', async () => {
    expect((await run([[MEM, '0']], OVERHEAD)).decision).toEqual({ kind: 'allow' });
    expect((await run([[MEM, '0']], OVERHEAD + 1n)).decision).toEqual({ kind: 'deny', reason: 'over-cap' });
  });

  it('rule 6: a real not-permitted from the simulated host (hard limit, no CAP_SYS_RESOURCE)', async () => {
    const h = await CoreHarness.instantiate(
      module,
      createSimulatedCapabilities(world([[MEM, String(4n * GiB)]], { canRaiseHardLimit: false })),
    );
    const r = h.evaluate(request(GiB));
    expect(r.decision).toEqual({ kind: 'deny', reason: 'set-memlock-failed: not-permitted' });
    expect(r.calls[1]).toEqual({ op: 'set-memlock', pid: TARGET, bytes: GiB, result: 'not-permitted' });
    expect(r.logs).toEqual([]);
  });

  for (const error of CAPABILITY_ERRORS) {
    it(`rule 6: set-memlock error ${error} -> deny with its WIT name`, async () => {
      const caps = failingSetMemlock(createSimulatedCapabilities(world([[MEM, String(4n * GiB)]])), error);
      const r = (await CoreHarness.instantiate(module, caps)).evaluate(request(GiB));
      expect(r.decision).toEqual({ kind: 'deny', reason: `set-memlock-failed: ${error}` });
    });
  }
});
