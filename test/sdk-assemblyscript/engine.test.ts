// The AS example components end to end through the real engine (validate, instrument, worker,
// fresh instance, the engine's own ABI glue) with the simulated capabilities. Each case also runs
// on the test harness; both must agree on decision, capability calls and log lines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../runtime/engine/engine.ts';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import type { SimulatedWorld } from '../../runtime/capabilities/simulated/world.ts';
import type { PolicyRequest } from '../../runtime/contract/types.ts';
import { CoreHarness } from './core-harness.ts';
import { AS_EXAMPLES, FOREIGN, GiB, componentBytes, coreModule, request, world, type AsExample } from './fixtures.ts';

const MEM = 'memory-bytes';
const OVERHEAD = 256n * 1024n * 1024n;

interface Case {
  example: AsExample;
  what: string;
  world: SimulatedWorld;
  req: PolicyRequest;
  decision: 'allow' | 'deny';
  reason: string;
}

const cases: Case[] = [
  {
    example: 'memlock-cap',
    what: 'memory plus overhead',
    world: world([[MEM, String(2n * GiB)]]),
    req: request(2n * GiB + OVERHEAD),
    decision: 'allow',
    reason: '',
  },
  {
    example: 'memlock-cap',
    what: 'over memory plus overhead',
    world: world([[MEM, String(2n * GiB)]]),
    req: request(2n * GiB + OVERHEAD + 1n),
    decision: 'deny',
    reason: 'over-cap',
  },
  {
    example: 'memlock-cap',
    what: 'no memory-bytes label',
    world: world([]),
    req: request(GiB),
    decision: 'deny',
    reason: 'missing-memory-bytes-label',
  },
  {
    example: 'memlock-cap',
    what: 'foreign target',
    world: world([[MEM, String(GiB)]]),
    req: request(GiB, FOREIGN),
    decision: 'deny',
    reason: 'target-not-in-requester-vm',
  },
  {
    example: 'memlock-cap',
    what: 'hard limit without CAP_SYS_RESOURCE',
    world: world([[MEM, String(GiB)]], { canRaiseHardLimit: false }),
    req: request(GiB),
    decision: 'deny',
    reason: 'set-memlock-failed: not-permitted',
  },
  {
    example: 'vfio-only',
    what: 'vfio VM gets unlimited',
    world: world([['vfio', 'true']]),
    req: request(GiB),
    decision: 'allow',
    reason: '',
  },
  {
    example: 'vfio-only',
    what: 'not a vfio VM',
    world: world([['vfio', 'yes']]),
    req: request(GiB),
    decision: 'deny',
    reason: 'vm-not-vfio',
  },
  {
    example: 'vfio-only',
    what: 'foreign target',
    world: world([['vfio', 'true']]),
    req: request(GiB, FOREIGN),
    decision: 'deny',
    reason: 'target-not-in-requester-vm',
  },
  {
    example: 'vfio-only',
    what: 'hard limit without CAP_SYS_RESOURCE',
    world: world([['vfio', 'true']], { canRaiseHardLimit: false }),
    req: request(GiB),
    decision: 'deny',
    reason: 'set-memlock-failed: not-permitted',
  },
];

let engine: Engine;
const sha = new Map<AsExample, string>();

beforeAll(async () => {
  // A generous deadline: this suite checks decisions, not speed, on a shared 2-core machine.
  engine = new Engine({ workers: 1, linuxCapabilities: false, limits: { deadlineMs: 10_000 } });
  await engine.ready();
  for (const name of AS_EXAMPLES) {
    const r = await engine.compile(componentBytes(name));
    if (!r.ok) throw new Error(`engine refused ${name}: ${r.kind}: ${r.message}`);
    expect(r.policy.exports).toEqual(['evaluate']);
    sha.set(name, r.policy.sha256);
  }
});
afterAll(async () => {
  await engine?.close();
});

describe('AS examples through the engine', () => {
  for (const c of cases) {
    it(`${c.example}: ${c.what} -> ${c.decision} ${c.reason}`, async () => {
      const outcome = await engine.evaluate(sha.get(c.example)!, c.req, { kind: 'simulated', world: c.world });
      expect(outcome.errorKind, outcome.errorDetail).toBeUndefined();
      expect({ decision: outcome.decision, reason: outcome.reason }).toEqual({
        decision: c.decision,
        reason: c.reason,
      });
      const ref = (await CoreHarness.instantiate(coreModule(c.example), createSimulatedCapabilities(c.world))).evaluate(
        c.req,
      );
      // The engine adds the host's errno detail to set-memlock calls; the harness does not.
      const calls = outcome.capabilityCalls.map((call) =>
        call.op === 'set-memlock' ? { op: call.op, pid: call.pid, bytes: call.bytes, result: call.result } : call,
      );
      expect(calls).toEqual(ref.calls);
      expect(outcome.logs).toEqual(ref.logs);
      expect(outcome.fuelUsed).toBeGreaterThan(0);
    });
  }
});
