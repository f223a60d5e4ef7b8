// Speculative runs on the engine's own thread (runtime/engine/speculative): a policy that fits
// the fuel slice is decided there; one that does not is run again in a worker, replaying the
// capability calls already made, and ends exactly as a worker-only run would. Real processes,
// real prlimit, real workers.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapabilitySpec } from '../../../runtime/capabilities/spec.ts';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import type { TapeEntry } from '../../../runtime/engine/speculative/capability-tape.ts';
import { WorkerPool } from '../../../runtime/engine/worker/worker-pool.ts';
import { CHARGE, compiledFromWat, fullPolicyWat, policyWat } from './fixtures/wat.ts';
import { request } from './fixtures/worlds.ts';
import { memlockOf, spawnVmRoot } from '../../support/vm-root.ts';

let child: ChildProcess;
let pid: number;
let spec: CapabilitySpec;
const engines: Engine[] = [];

/** No test here is about time: a clock that never moves keeps the time budget out of them
 * (speculative-budget.test.ts is about it). */
function engine(inlineFuel: number, policy: CompiledPolicy): Engine {
  const e = new Engine({ workers: 1, linuxCapabilities: true, inlineFuel, limits: policy.limits, clock: () => 0 });
  e.load(policy);
  engines.push(e);
  return e;
}

/** query-vm-identity(target); set-memlock(target, bytes); then `burn` loop iterations; allow. */
function setThenBurn(burn: number): CompiledPolicy {
  return compiledFromWat(
    policyWat(`
  (func (export "evaluate") (param $op i32) (param $rpid i32) (param $ruid i32) (param $tpid i32) (param $bytes i64) (result i32)
    (local $i i32)
    ${CHARGE}
    (call $query (local.get $tpid) (i32.const 1024))
    (if (i32.eqz (i32.load8_u (i32.const 1024))) (then (unreachable)))
    (call $set_memlock (local.get $tpid) (local.get $bytes) (i32.const 1536))
    (if (i32.load8_u (i32.const 1536)) (then (return (call $deny (i32.const 0) (i32.const 0)))))
    (block $done (loop $l ${CHARGE}
      (br_if $done (i32.ge_u (local.get $i) (i32.const ${burn})))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $allow))`),
    { deadlineMs: 10_000 },
  );
}

/** Lowers the child's limit a little each time, so every allow is a real, visible prlimit. */
let nextBytes = 3n << 20n;
const lower = (): bigint => (nextBytes -= 4096n);

beforeAll(() => {
  ({ child, pid, spec } = spawnVmRoot({ uuid: 'spec-vm', name: 'spec', id: 1, labels: [['k', 'v']] }));
});

afterAll(async () => {
  child.kill('SIGKILL');
  await Promise.all(engines.map((e) => e.close()));
});

describe('speculative run on the engine thread', () => {
  it('decides a policy that fits the slice there, with the outcome a worker-only run gives', async () => {
    const policy = compiledFromWat(fullPolicyWat(), { deadlineMs: 10_000 });
    const inline = engine(100_000, policy);
    const workerOnly = engine(0, policy);
    const bytes = lower();
    const a = await inline.evaluate(policy.sha256, request({ requesterPid: pid, targetPid: pid, bytes }), spec);
    expect(inline.inlineStats).toMatchObject({ decided: 1, continued: 0, skipped: 0 });
    expect(memlockOf(pid)).toEqual({ soft: bytes, hard: bytes });
    const b = await workerOnly.evaluate(policy.sha256, request({ requesterPid: pid, targetPid: pid, bytes }), spec);
    expect(workerOnly.inlineStats).toBeUndefined();
    // Each run finds the limit the one before it left: compare them without the value before.
    const comparable = ({ durationUs: _d, ...rest }: typeof a): Omit<typeof a, 'durationUs'> => ({
      ...rest,
      capabilityCalls: rest.capabilityCalls.map((c) => (c.op === 'set-memlock' ? { ...c, effect: undefined } : c)),
    });
    expect(a.decision).toBe('allow');
    expect(comparable(a)).toEqual(comparable(b));
  });

  it('continues in a worker when the slice runs out after set-memlock: the call is made once, the outcome is the full run', async () => {
    // Two capability calls take ~33k of the 40k slice; the loop after them runs it out.
    const policy = setThenBurn(20_000);
    const small = engine(40_000, policy);
    const workerOnly = engine(0, policy);
    const bytes = lower();
    const a = await small.evaluate(policy.sha256, request({ requesterPid: pid, targetPid: pid, bytes }), spec);
    expect(small.inlineStats).toMatchObject({ decided: 0, continued: 1, skipped: 0 });
    expect(a).toMatchObject({ decision: 'allow', reason: '' });
    expect(a.capabilityCalls).toEqual([
      { op: 'query-vm-identity', pid, result: 'some', vmUuid: 'spec-vm' },
      {
        op: 'set-memlock',
        pid,
        bytes,
        result: 'ok',
        effect: { before: expect.any(Object), startTime: expect.any(Number) },
      },
    ]);
    expect(memlockOf(pid)).toEqual({ soft: bytes, hard: bytes });
    const b = await workerOnly.evaluate(policy.sha256, request({ requesterPid: pid, targetPid: pid, bytes }), spec);
    expect(a.fuelUsed).toBe(b.fuelUsed);
    expect(a.fuelUsed).toBeGreaterThan(40_000);
  });

  it('a run that continues in a worker after runs decided here replays its own calls only (the tape of a decided run is reused empty)', async () => {
    const fits = setThenBurn(0);
    const outgrows = setThenBurn(20_000);
    const e = engine(40_000, fits);
    e.load(outgrows);
    for (let i = 0; i < 3; i++)
      expect(
        await e.evaluate(fits.sha256, request({ requesterPid: pid, targetPid: pid, bytes: lower() }), spec),
      ).toMatchObject({ decision: 'allow' });
    expect(e.inlineStats).toMatchObject({ decided: 3, continued: 0 });
    const bytes = lower();
    const o = await e.evaluate(outgrows.sha256, request({ requesterPid: pid, targetPid: pid, bytes }), spec);
    expect(e.inlineStats).toMatchObject({ decided: 3, continued: 1 });
    expect(o).toMatchObject({ decision: 'allow', reason: '' });
    expect(o.capabilityCalls.map((c) => [c.op, c.result])).toEqual([
      ['query-vm-identity', 'some'],
      ['set-memlock', 'ok'],
    ]);
    expect(memlockOf(pid)).toEqual({ soft: bytes, hard: bytes });
  });

  it('backs off: after a run that needed the worker, the next request goes straight there (startsInline says so beforehand, counting nothing down)', async () => {
    const policy = setThenBurn(20_000);
    const small = engine(40_000, policy);
    const vm = spec.kind === 'linux' ? spec.scope.identity.uuid : '';
    const starts: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      // Asked twice: a question, not a skip.
      small.startsInline(policy.sha256, vm);
      starts.push(small.startsInline(policy.sha256, vm));
      expect(
        await small.evaluate(policy.sha256, request({ requesterPid: pid, targetPid: pid, bytes: lower() }), spec),
      ).toMatchObject({ decision: 'allow' });
    }
    // 1st: continued (backoff 1) -> 2nd skipped -> 3rd continued (backoff 2) -> 4th skipped.
    expect(small.inlineStats).toMatchObject({ decided: 0, continued: 2, skipped: 2 });
    // Before the first run the capabilities were not loaded here yet (it waits for them).
    expect(starts).toEqual([false, false, true, false]);
    // Another VM's back-off is its own; a policy the engine does not know never starts here.
    expect(small.startsInline(policy.sha256, 'another-vm')).toBe(true);
    expect(small.startsInline('0'.repeat(64), vm)).toBe(false);
  });

  it('a policy that never ends leaves the engine thread after its slice and times out in the worker', async () => {
    const policy = compiledFromWat(
      policyWat(
        `(func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) ${CHARGE} (loop $l ${CHARGE} (br $l)) (call $allow))`,
        { fuel: 1e15 },
      ),
      { deadlineMs: 300, fuel: 1e15 },
    );
    const e = engine(100_000, policy);
    const o = await e.evaluate(policy.sha256, request({ requesterPid: pid, targetPid: pid }), spec);
    expect(o).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
    expect(e.inlineStats).toMatchObject({ decided: 0, continued: 1, skipped: 0 });
  });
});

describe('replay in the worker', () => {
  const policy = setThenBurn(10);
  let pool: WorkerPool;

  beforeAll(async () => {
    pool = new WorkerPool({ size: 1, linuxCapabilities: true });
    pool.load(policy.sha256, { module: policy.module, limits: policy.limits });
    await pool.ready();
  });
  afterAll(() => pool.close());

  const run = (tape: TapeEntry[], bytes: bigint) =>
    pool.run(
      {
        sha256: policy.sha256,
        request: request({ requesterPid: pid, targetPid: pid, bytes }),
        capabilities: spec,
        replay: tape,
      },
      10_000,
    );
  const identity = { uuid: 'spec-vm', name: 'spec', id: 1, labels: [['k', 'v']] as Array<[string, string]> };

  it('answers the recorded calls from the tape and never repeats them', async () => {
    const before = memlockOf(pid);
    const bytes = lower();
    // The tape says set-memlock failed; a live call would have succeeded (bytes is below the hard limit).
    const o = await run(
      [
        { op: 'query-vm-identity', pid, result: identity },
        { op: 'set-memlock', pid, bytes, result: { ok: false, error: 'not-permitted' } },
      ],
      bytes,
    );
    expect(o).toMatchObject({ decision: 'deny', reason: '' });
    expect(o.capabilityCalls).toEqual([
      { op: 'query-vm-identity', pid, result: 'some', vmUuid: 'spec-vm' },
      { op: 'set-memlock', pid, bytes, result: 'not-permitted' },
    ]);
    expect(memlockOf(pid)).toEqual(before);
  });

  it('goes live after the tape: a prefix replays, the rest acts', async () => {
    const bytes = lower();
    const o = await run([{ op: 'query-vm-identity', pid, result: identity }], bytes);
    expect(o).toMatchObject({ decision: 'allow' });
    expect(memlockOf(pid)).toEqual({ soft: bytes, hard: bytes });
  });

  it('fails closed when the repeated run asks for a different call', async () => {
    const before = memlockOf(pid);
    const bytes = lower();
    const o = await run(
      [
        { op: 'query-vm-identity', pid, result: identity },
        { op: 'set-memlock', pid, bytes: bytes + 1n, result: { ok: true } },
      ],
      bytes,
    );
    expect(o).toMatchObject({ decision: 'deny', errorKind: 'host-error' });
    expect(o.errorDetail).toMatch(/replay diverged at capability call 2/);
    expect(memlockOf(pid)).toEqual(before);
  });

  it('fails closed when the repeated run makes fewer calls than recorded', async () => {
    const bytes = lower();
    const o = await run(
      [
        { op: 'query-vm-identity', pid, result: identity },
        { op: 'set-memlock', pid, bytes, result: { ok: true } },
        { op: 'query-vm-identity', pid, result: identity },
      ],
      bytes,
    );
    expect(o).toMatchObject({ decision: 'deny', errorKind: 'host-error' });
    expect(o.errorDetail).toMatch(/made 2 of the 3 capability calls/);
  });
});
