// Through the real worker pool: jobs and answers that the shared-memory mailboxes cannot carry
// (an outcome over 64 KiB, a request outside its declared types) take the MessagePort and give
// exactly what an in-thread evaluation gives; and consecutive jobs with different capability
// specs are each evaluated against their own spec (the worker's spec cache never serves a stale one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../../runtime/capabilities/simulated/capabilities.ts';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { evaluateOnce } from '../../support/evaluate-once.ts';
import type { Outcome } from '../../../runtime/engine/outcome.ts';
import { MAILBOX_BYTES } from '../../../runtime/engine/worker/protocol.ts';
import { CHARGE, compiledFromWat, fullPolicyWat, policyWat } from '../run/fixtures/wat.ts';
import { OTHER_VM_PROCESS, request, simulated, world } from '../run/fixtures/worlds.ts';

// 64 log lines of 4000 bytes each: ~256 KiB of outcome, four times a mailbox (with the log caps
// raised to keep them all: the default keeps 16 KiB).
const CHATTY = policyWat(`
  (data (i32.const 16384) "${'a'.repeat(4000)}")
  (func (export "evaluate") (param $op i32) (param $rpid i32) (param $ruid i32) (param $tpid i32) (param $bytes i64) (result i32)
    (local $i i32)
    ${CHARGE}
    (loop $more
      ${CHARGE}
      (call $log (i32.const 2) (i32.const 16384) (i32.const 4000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 64))))
    (call $allow))`);

let engine: Engine;
let chatty: CompiledPolicy;
let full: CompiledPolicy;

beforeAll(async () => {
  engine = new Engine({ workers: 1, linuxCapabilities: false, limits: { deadlineMs: 5_000 } });
  await engine.ready();
  // A generous deadline: the machine is shared, and no test here is about time.
  chatty = compiledFromWat(CHATTY, { deadlineMs: 5_000, maxLogBytes: 64 * 4000 });
  full = compiledFromWat(fullPolicyWat(), { deadlineMs: 5_000 });
  engine.load(chatty);
  engine.load(full);
});

afterAll(async () => {
  await engine.close();
});

function withoutTime(o: Outcome): Omit<Outcome, 'durationUs'> {
  const { durationUs: _, ...rest } = o;
  return rest;
}

describe('mailbox fallbacks', () => {
  it('an outcome larger than the answer mailbox comes through the port, complete', async () => {
    const o = await engine.evaluate(chatty.sha256, request(), simulated());
    expect(o.logs).toHaveLength(64);
    expect(o.logs.reduce((n, l) => n + l.message.length, 0)).toBeGreaterThan(MAILBOX_BYTES);
    expect(withoutTime(o)).toStrictEqual(
      withoutTime(evaluateOnce(chatty.module, request(), createSimulatedCapabilities(world()), chatty.limits)),
    );
    // and the mailbox path still works right after
    expect(await engine.evaluate(full.sha256, request(), simulated())).toMatchObject({
      decision: 'allow',
      capabilityCalls: [{}, {}],
    });
  });

  it('a request outside its declared types takes the port and behaves as in-thread', async () => {
    const odd = request({ bytes: -1n });
    const o = await engine.evaluate(full.sha256, odd, simulated());
    expect(withoutTime(o)).toStrictEqual(
      withoutTime(evaluateOnce(full.module, odd, createSimulatedCapabilities(world()), full.limits)),
    );
  });

  it('consecutive jobs with different specs each see their own', async () => {
    const inVm = simulated();
    const outside = simulated({ requesterPid: OTHER_VM_PROCESS }); // the target is then out of scope
    for (const spec of [inVm, inVm, outside, outside, inVm, outside]) {
      const o = await engine.evaluate(full.sha256, request(), spec);
      const expected =
        spec === inVm ? { decision: 'allow', reason: '' } : { decision: 'deny', reason: 'target-not-in-requester-vm' };
      expect({ decision: o.decision, reason: o.reason }).toEqual(expected);
    }
  });
});
