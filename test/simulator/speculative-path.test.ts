// The simulator decides as the daemon does: first on its own thread under the daemon's fuel
// slice, continued in a worker (replaying the calls already made, in the world the first run
// left) when the slice is not enough. Compared with an Engine made from the daemon's resolved
// config, acting on a real process with real prlimit. Real compiled guests: the AssemblyScript
// example and a WAT guest componentized and compiled like any upload.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapabilitySpec } from '../../runtime/capabilities/spec.ts';
import type { SimulatedWorld } from '../../runtime/capabilities/simulated/world.ts';
import { engineOptions } from '../../runtime/config/engine-options.ts';
import type { PolicyRequest } from '../../runtime/contract/types.ts';
import { resolveConfig } from '../../runtime/daemon/config.ts';
import { compilePolicy } from '../../runtime/engine/compile.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import type { CapabilityCall } from '../../runtime/engine/outcome.ts';
import { runScenario } from '../../runtime/simulator/runner.ts';
import { Simulator } from '../../runtime/simulator/simulator.ts';
import { memlockOf, spawnVmRoot } from '../support/vm-root.ts';
import { continuedPolicyComponent } from './support/continued-policy.ts';
import { ensureExampleGuests } from './support/guests.ts';

const LABELS: Array<[string, string]> = [['memory-bytes', '4294967296']];
const REQUESTER = 100;

let child: ChildProcess;
let pid: number;
let hard: bigint;
let linux: CapabilitySpec;
let memlockCap: Uint8Array;
let continued: Uint8Array;
const closers: Array<() => Promise<void>> = [];

/** No test here is about time: a clock that never moves keeps the time budget out of them, and
 * a long deadline keeps a loaded machine's stalls from timing the daemon's decisions out (its
 * deadline is wall-clock; the simulator's counts CPU time, test/simulator/cpu-deadline.test.ts). */
const still = (): number => 0;
const patient = { deadlineMs: 10_000 };

function simulator(): Simulator {
  const s = new Simulator({}, { clock: still });
  closers.push(() => s.close());
  return s;
}

/** The Engine `capgate serve` makes with no config (daemon.ts), on the real host. */
function daemonEngine(): Engine {
  const e = new Engine({
    ...engineOptions(resolveConfig({}).engine),
    workers: 1,
    linuxCapabilities: true,
    clock: still,
  });
  closers.push(() => e.close());
  return e;
}

async function compiled(engine: Engine | Simulator, bytes: Uint8Array): Promise<string> {
  const r = await engine.compile(bytes);
  if (!r.ok) throw new Error(`${r.kind}: ${r.message}`);
  return r.policy.sha256;
}

/** The requester's VM in the simulator, its target at `limit`. */
function world(limit: bigint, canRaiseHardLimit = false): SimulatedWorld {
  return {
    requesterPid: REQUESTER,
    vms: [{ identity: { uuid: 'vm-1', name: 'vm', id: 1, labels: LABELS }, pids: [REQUESTER] }],
    processes: [{ pid: REQUESTER, memlock: { soft: limit, hard: limit } }],
    canRaiseHardLimit,
  };
}

const ask = (p: number, bytes: bigint): PolicyRequest => ({
  operation: 'set-memlock',
  requesterPid: p,
  requesterUid: 0,
  targetPid: p,
  bytes,
});

/** What an author compares: the calls without the pid (the simulator's is made up) or the undo record. */
const shown = (calls: CapabilityCall[]): string[] =>
  calls.map((c) => (c.op === 'set-memlock' ? `${c.op}(${c.bytes}) -> ${c.result}` : `${c.op} -> ${c.result}`));

beforeAll(async () => {
  memlockCap = new Uint8Array(readFileSync((await ensureExampleGuests()).memlockCap));
  continued = await continuedPolicyComponent();
  ({ child, pid, spec: linux } = spawnVmRoot({ uuid: 'vm-1', name: 'vm', id: 1, labels: LABELS }));
  hard = memlockOf(pid).hard;
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await Promise.all(closers.map((c) => c()));
});

describe("the simulator's evaluation path is the daemon's", () => {
  it("runs with the daemon's engine limits when no config sets them", () => {
    expect(simulator().limits).toEqual(resolveConfig({}).engine.limits);
  });

  it('decides inline what the daemon decides inline, with the same outcome', async () => {
    const sim = simulator();
    const daemon = daemonEngine();
    const bytes = hard / 2n;
    const s = await sim.decide(await compiled(sim, memlockCap), {
      request: ask(REQUESTER, bytes),
      world: world(hard),
      policyBound: true,
      absentPids: [],
    });
    const d = await daemon.evaluate(await compiled(daemon, memlockCap), ask(pid, bytes), linux, patient);
    expect(daemon.inlineStats).toMatchObject({ decided: 1, continued: 0 });
    expect(s.decidedBy).toBe('inline');
    expect(d.decision).toBe('allow');
    expect(memlockOf(pid)).toEqual({ soft: bytes, hard: bytes });
    expect({ decision: s.decision, reason: s.reason, calls: shown(s.capabilityCalls), logs: s.logs }).toEqual({
      decision: d.decision,
      reason: d.reason,
      calls: shown(d.capabilityCalls),
      logs: d.logs,
    });
    expect(s.fuelUsed).toBe(d.fuelUsed);
  });

  it('continues in a worker past the fuel slice, replaying the first run, and lists what the daemon lists', async () => {
    const sim = simulator();
    const daemon = daemonEngine();
    const now = memlockOf(pid).hard;
    const bytes = now / 2n;
    const s = await sim.decide(await compiled(sim, continued), {
      request: ask(REQUESTER, bytes),
      world: world(now),
      policyBound: true,
      absentPids: [],
    });
    const d = await daemon.evaluate(await compiled(daemon, continued), ask(pid, bytes), linux, patient);
    expect(daemon.inlineStats).toMatchObject({ decided: 0, continued: 1 });
    expect(s.decidedBy).toBe('inline-then-worker');
    // The daemon has no CAP_SYS_RESOURCE: raising the hard limit the first run lowered is refused.
    expect(d).toMatchObject({ decision: 'allow', reason: '' });
    expect(shown(d.capabilityCalls)).toEqual([
      `set-memlock(${bytes}) -> ok`,
      `set-memlock(${bytes + 4096n}) -> not-permitted`,
    ]);
    expect({ decision: s.decision, reason: s.reason, calls: shown(s.capabilityCalls) }).toEqual({
      decision: d.decision,
      reason: d.reason,
      calls: shown(d.capabilityCalls),
    });
    expect(s.fuelUsed).toBe(d.fuelUsed);
    expect(s.fuelUsed).toBeGreaterThan(resolveConfig({}).engine.inlineFuel);
  });

  it("the continuation sees the first run's set-memlock: the world it gets is the one that run left", async () => {
    const sim = simulator();
    const sha = await compiled(sim, continued);
    const limit = 8n << 20n;
    const o = await sim.decide(sha, {
      request: ask(REQUESTER, 4n << 20n),
      world: world(limit),
      policyBound: true,
      absentPids: [],
    });
    expect(o.decidedBy).toBe('inline-then-worker');
    // A continuation in the case's original world (hard limit 8Mi) would have raised to 4Mi + 4Ki.
    expect(o.capabilityCalls).toEqual([
      { op: 'set-memlock', pid: REQUESTER, bytes: 4n << 20n, result: 'ok' },
      {
        op: 'set-memlock',
        pid: REQUESTER,
        bytes: (4n << 20n) + 4096n,
        result: 'not-permitted',
        detail: expect.any(String),
      },
    ]);
    expect(o).toMatchObject({ decision: 'allow', reason: '' });
  });

  it('backs off as the daemon does: after a case that needed the worker, the next one starts there', async () => {
    const sim = simulator();
    const sha = await compiled(sim, continued);
    const request = {
      operation: 'set-memlock' as const,
      requesterPid: REQUESTER,
      requesterUid: 0,
      targetPid: REQUESTER,
    };
    const result = await runScenario(sim, sha, {
      host: { canRaiseHardLimit: false, policyBound: true },
      vms: [{ identity: { uuid: 'vm-1', name: 'vm', id: 1, labels: LABELS }, pids: [REQUESTER] }],
      processes: [],
      absentPids: [],
      cases: [1, 2, 3].map((n) => ({
        name: `case ${n}`,
        request: { ...request, bytes: 1n << 20n },
        expect: { decision: 'allow' as const },
      })),
    });
    expect(result.failed).toBe(0);
    // 1st: continued (back-off 1) -> 2nd: skipped, straight to the worker -> 3rd: continued.
    expect(result.cases.map((c) => c.outcome.decidedBy)).toEqual([
      'inline-then-worker',
      'worker',
      'inline-then-worker',
    ]);
  });

  it('a continuation that asks something other than the first run did is denied, as on the real host', async () => {
    // The engine's seam hands the worker a tape whose set-memlock differs from the one the
    // repeated run makes: the simulated replay checks each call as the Linux one does.
    const e = new Engine({
      ...engineOptions(resolveConfig({}).engine),
      workers: 1,
      linuxCapabilities: false,
      compile: compilePolicy,
      clock: still,
      seams: { replayTape: (tape) => tape.map((t) => (t.op === 'set-memlock' ? { ...t, bytes: t.bytes + 1n } : t)) },
    });
    closers.push(() => e.close());
    const o = await e.evaluate(await compiled(e, continued), ask(REQUESTER, 4n << 20n), {
      kind: 'simulated',
      world: world(8n << 20n),
    });
    expect(e.inlineStats).toMatchObject({ decided: 0, continued: 1 });
    expect(o).toMatchObject({ decision: 'deny', errorKind: 'host-error' });
    expect(o.errorDetail).toMatch(/replay diverged at capability call 1/);
  });
});
