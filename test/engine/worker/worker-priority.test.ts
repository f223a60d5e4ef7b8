// The evaluation workers run below the daemon's main thread (os/thread-priority.ts): the main
// thread serves every VM, so policy code in a worker yields to it when they share a core. The
// nice value is per thread on Linux.
import { readFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { Engine } from '../../../runtime/engine/engine.ts';
import { EVALUATION_NICE } from '../../../runtime/os/thread-priority.ts';
import { compiledFromWat, policyWat } from '../run/fixtures/wat.ts';
import { request, simulated } from '../run/fixtures/worlds.ts';
import { threadNices as nicesOf } from '../../support/processes/thread-nice.ts';

const threadNices = (): Map<number, number> => nicesOf(process.pid);

/** Threads started since `before`, at the evaluation workers' nice value. */
const newLowered = (before: Map<number, number>): number[] =>
  [...threadNices()].filter(([tid, nice]) => !before.has(tid) && nice === EVALUATION_NICE).map(([tid]) => tid);

let engine: Engine | undefined;
afterAll(async () => engine?.close());

it('every evaluation worker, and its replacement after a deadline, runs at nice 5 and is named capgate-eval; the main thread keeps its own', async () => {
  const before = threadNices();
  expect(before.get(process.pid)).toBe(0);
  engine = new Engine({ workers: 2, linuxCapabilities: false });
  await engine.ready();
  const lowered = newLowered(before);
  expect(lowered).toHaveLength(2);
  expect(threadNices().get(process.pid)).toBe(0);
  // Named too, so that top -H (and the isolation bench) tells them apart.
  for (const tid of lowered)
    expect(readFileSync(`/proc/${process.pid}/task/${tid}/comm`, 'utf8').trim()).toBe('capgate-eval');

  // A run past its deadline ends its worker; the new one is lowered too.
  const spin = compiledFromWat(
    policyWat(`(func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) (loop $l (br $l)) (i32.const 0))`),
  );
  engine.load(spin);
  const respawns = engine.workerRespawns;
  const o = await engine.evaluate(spin.sha256, request(), simulated(), { deadlineMs: 50, noInline: true });
  expect(o).toMatchObject({ decision: 'deny', reason: 'timeout' });
  expect(engine.workerRespawns).toBe(respawns + 1);
  await engine.ready();
  const now = newLowered(before);
  expect(now).toHaveLength(2);
  expect(now).not.toEqual(lowered);
}, 60_000);
