// The simulator's worker deadline counts the CPU time of the worker's thread, not the wall clock,
// so a policy author's verdict does not depend on how busy their machine is: a case that needs a
// fraction of the deadline in CPU time is decided the same when spinning processes keep every
// core busy (where the daemon's wall-clock deadline, on the same machine, times it out). A policy
// that never ends still times out: on the CPU deadline, or on the wall-clock cap for a thread
// that gets no CPU. Where a clock can be injected, it is.
import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { engineOptions } from '../../runtime/config/engine-options.ts';
import { resolveConfig } from '../../runtime/daemon/config.ts';
import { compilePolicy } from '../../runtime/engine/compile.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { otherThreadCpuClock } from '../../runtime/os/thread-cpu-clock.ts';
import { Simulator, type SimulatedRequest } from '../../runtime/simulator/simulator.ts';
import { componentFromWat, policyWat } from '../support/components.ts';
import { spawnChild } from '../support/processes/children.ts';
import { ChildOutput } from '../support/wait.ts';

const REQUESTER = 100;
/** Enough fuel for any loop here: only time ends these runs. */
const FUEL = 1e13;
/** The daemon's deadline. */
const DEADLINE_MS = 100;

/** Allows after `bytes` iterations of a small loop (the request says how much CPU the case needs). */
const burnPolicy = (): Promise<Uint8Array> =>
  componentFromWat(
    policyWat({
      evaluateBody: `(local $i i64)
        (block $d (loop $l (br_if $d (i64.ge_u (local.get $i) (local.get $bytes)))
          (local.set $i (i64.add (local.get $i) (i64.const 1))) (br $l)))
        (i32.const 1024)`,
    }),
  );
const spinPolicy = (): Promise<Uint8Array> =>
  componentFromWat(policyWat({ evaluateBody: '(loop $l (br $l)) (i32.const 1024)' }));

function ask(iterations: bigint): SimulatedRequest {
  return {
    request: {
      operation: 'set-memlock',
      requesterPid: REQUESTER,
      requesterUid: 0,
      targetPid: REQUESTER,
      bytes: iterations,
    },
    world: {
      requesterPid: REQUESTER,
      vms: [{ identity: { uuid: 'vm-1', name: 'vm', id: 1, labels: [] }, pids: [REQUESTER] }],
      processes: [{ pid: REQUESTER, memlock: { soft: 0n, hard: 0n } }],
      canRaiseHardLimit: true,
    },
    policyBound: true,
    absentPids: [],
  };
}

const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(closers.map((c) => c()));
});

/** A Simulator; `tids` collects the kernel ids of the threads its worker deadline reads. */
function simulator(seams: ConstructorParameters<typeof Simulator>[1] = {}): { s: Simulator; tids: number[] } {
  const tids: number[] = [];
  const workerClock = seams.workerClock ?? otherThreadCpuClock;
  const s = new Simulator(
    { fuel: FUEL },
    {
      ...seams,
      workerClock: (tid) => {
        tids.push(tid);
        return workerClock(tid);
      },
    },
  );
  closers.push(() => s.close());
  return { s, tids };
}

async function compiled(s: Simulator, bytes: Uint8Array): Promise<string> {
  const r = await s.compile(bytes);
  if (!r.ok) throw new Error(`${r.kind}: ${r.message}`);
  return r.policy.sha256;
}

/**
 * Keeps every core busy: 8 spinning shells a core; resolves once each is spinning. Each is in a
 * session of its own, so where the kernel groups sessions (sched_autogroup) each weighs as much as
 * this whole process: the worker's thread gets ~1/9 of a core, ~1/3 of what it needs to finish
 * its case by the deadline in wall time. Killed after the test (children.ts).
 */
async function busyCores(): Promise<void> {
  const spinners = Array.from({ length: 8 * availableParallelism() }, () =>
    spawnChild('sh', ['-c', 'echo spinning; while :; do :; done']),
  );
  await Promise.all(spinners.map((c) => new ChildOutput(c).until('spinning\n')));
}

describe("the simulator's worker deadline", () => {
  it('decides a case that needs a fraction of the deadline in CPU time the same while every core is busy', async () => {
    // A wall-clock cap of 100x (10 s), not the default 10x: beside a whole suite, and the spinners
    // below, the worker's thread can get under 3% of a core, and the 1 s cap would then end the
    // run (the cap itself has a test of its own below).
    const { s, tids } = simulator({ wallCapFactor: 100 });
    const sha = await compiled(s, await burnPolicy());
    // Calibrate on the worker's own clock: iterations for about 30% of the deadline.
    const probe = 2_000_000n;
    expect((await s.decide(sha, ask(probe))).decision).toBe('allow');
    const cpu = otherThreadCpuClock(tids.at(-1)!)!;
    const before = cpu();
    expect((await s.decide(sha, ask(probe), { deadlineMs: 60_000 })).decision).toBe('allow');
    const perIteration = (cpu() - before) / Number(probe);
    const iterations = BigInt(Math.ceil((0.3 * DEADLINE_MS) / perIteration));
    const idle = await s.decide(sha, ask(iterations));
    // Past the speculative run's slice: the worker decides (the run it continues, or one it takes from the start).
    expect(idle).toMatchObject({ decision: 'allow', reason: '' });
    expect(idle.decidedBy).toMatch(/worker/);

    // The daemon's engine on this machine, its deadline wall-clock, for comparison.
    const daemon = new Engine({
      ...engineOptions(resolveConfig({}).engine),
      limits: { ...engineOptions(resolveConfig({}).engine).limits, fuel: FUEL },
      workers: 1,
      linuxCapabilities: false,
      compile: compilePolicy,
    });
    closers.push(() => daemon.close());
    const compiledForDaemon = await daemon.compile(await burnPolicy());
    if (!compiledForDaemon.ok) throw new Error(compiledForDaemon.message);
    const spec = { kind: 'simulated', world: ask(iterations).world } as const;
    // Given the time, the daemon's engine allows the case too (not at its 100 ms here: this test
    // may run beside a whole suite, and that deadline is wall-clock, as the next check shows).
    const patient = await daemon.evaluate(compiledForDaemon.policy.sha256, ask(iterations).request, spec, {
      deadlineMs: 60_000,
    });
    expect(patient.decision).toBe('allow');

    await busyCores();
    const cpuBefore = cpu();
    const loaded = await s.decide(sha, ask(iterations));
    const cpuMs = cpu() - cpuBefore;
    expect(loaded).toMatchObject({ decision: 'allow', reason: '' });
    expect(loaded.decidedBy).toMatch(/worker/);
    // What the case cost the worker's thread stayed below the deadline ...
    expect(cpuMs).toBeLessThan(DEADLINE_MS);
    // ... while the wall time it took, with the cores busy, is past it: the daemon's deadline times it out.
    const wall = await daemon.evaluate(compiledForDaemon.policy.sha256, ask(iterations).request, spec);
    expect(wall).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
  }, 120_000);

  it('counts CPU time, not wall time: a run longer than the deadline is decided while its clock says it fits', async () => {
    // The worker's clock stands still: however long the run takes, it has used no CPU time.
    const { s, tids } = simulator({ workerClock: () => () => 0, wallCapFactor: 1000 });
    const sha = await compiled(s, await burnPolicy());
    const probe = 2_000_000n;
    expect((await s.decide(sha, ask(probe))).decision).toBe('allow');
    const cpu = otherThreadCpuClock(tids.at(-1)!)!;
    const before = cpu();
    expect((await s.decide(sha, ask(probe))).decision).toBe('allow');
    const perIteration = (cpu() - before) / Number(probe);
    // Three deadlines of CPU time: at least that much wall time.
    const iterations = BigInt(Math.ceil((3 * DEADLINE_MS) / perIteration));
    const o = await s.decide(sha, ask(iterations));
    expect(o).toMatchObject({ decision: 'allow', reason: '' });
    expect(o.decidedBy).toMatch(/worker/);
  }, 120_000);

  it('times out a policy that never ends on the CPU deadline', async () => {
    // Each read of the worker's clock says 600 ms more (the warm-up run, with its 1 s deadline, ends at the second look).
    const { s } = simulator({
      workerClock: () => {
        let t = 0;
        return () => (t += 600);
      },
      wallCapFactor: 1000,
    });
    const sha = await compiled(s, await spinPolicy());
    const o = await s.decide(sha, ask(0n));
    expect(o).toMatchObject({ decision: 'deny', errorKind: 'timeout', decidedBy: 'inline-then-worker' });
    expect(o.errorDetail).toMatch(
      /^no decision within the 100 ms deadline \([\d.]+ ms of it in the first run\); the worker's thread had used 600\.0 ms of CPU time; the worker was terminated$/,
    );
  }, 120_000);

  it('times out a policy that never ends on the wall-clock cap when its thread gets no CPU time', async () => {
    const { s } = simulator({ workerClock: () => () => 0, wallCapFactor: 2 });
    const sha = await compiled(s, await spinPolicy());
    const o = await s.decide(sha, ask(0n));
    expect(o).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
    expect(o.errorDetail).toMatch(
      /^no decision within the 100 ms deadline \([\d.]+ ms of it in the first run\): its wall-clock cap of [\d.]+ ms \(2x\) passed first, the worker's thread having had 0\.0 ms of CPU time \(the machine is too busy\); the worker was terminated$/,
    );
  }, 120_000);

  it('times out a policy that never ends on its real clock, loaded or not', async () => {
    const { s } = simulator();
    const sha = await compiled(s, await spinPolicy());
    const idle = await s.decide(sha, ask(0n));
    expect(idle).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
    expect(idle.errorDetail).toMatch(/^no decision within the 100 ms deadline \(.*; the worker's thread had used/);
    // The timeout replaced the worker. A case the worker decides waits for the new one to start
    // while the machine is idle: started beside the spinners below, a worker took 5-35 s (its
    // thread's share of a core is tiny), and a whole suite beside them made it over 120 s.
    const burn = await compiled(s, await burnPolicy());
    expect(await s.decide(burn, ask(2_000_000n))).toMatchObject({
      decision: 'allow',
      decidedBy: expect.stringMatching(/worker/),
    });
    await busyCores();
    // Whichever ends it first, the CPU deadline or the wall-clock cap, it ends.
    expect(await s.decide(sha, ask(0n))).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
  }, 120_000);
});

describe("the simulator's speculative runs", () => {
  it('take each case in a turn of the event loop of its own: where the worker takes over does not depend on the cases before', async () => {
    // Each read of this thread's clock says 0.3 ms more: one run costs ~1 ms of the turn's 2 ms budget.
    let t = 0;
    const { s } = simulator({ clock: () => (t += 0.3) });
    const sha = await compiled(s, await burnPolicy());
    const decidedBy: string[] = [];
    for (let i = 0; i < 20; i++) decidedBy.push((await s.decide(sha, ask(0n))).decidedBy);
    expect(decidedBy).toEqual(Array(20).fill('inline'));
  }, 120_000);
});
