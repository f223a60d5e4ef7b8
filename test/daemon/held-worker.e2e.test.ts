// One evaluation worker (a 1-core host's default), held by a hostile VM whose policy spins there
// until its deadline: another VM's decisions, which the main thread makes at once, are answered
// meanwhile. They used to wait for the worker's scheduler slot, that is for the hostile's deadline.
// A real daemon, real VMs (agent processes), one policy bound for both: it spins only on the
// hostile's STORM_BYTES requests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORM_BYTES } from '../support/hostile-policies.ts';
import { startSpinningNeighbour, type SpinningNeighbour } from './helpers/spinning-neighbour.ts';
import { MiB, waitFor } from './helpers/fixtures.ts';

let neighbour: SpinningNeighbour;

beforeAll(async () => {
  neighbour = await startSpinningNeighbour({
    // One worker: one global slot, one per VM. Fuel never runs out first: the deadline does,
    // and it is long enough for the victim's requests to be answered many times over.
    engine: { workers: 1, limits: { deadlineMs: 5000, fuel: 1e15 } },
    request: { deadlineMs: 15_000 },
  });
}, 300_000);

afterAll(() => neighbour?.stop());

describe('the only worker, held by a hostile VM', () => {
  it("holds no other VM's decision that the main thread makes: 20 are answered before the hostile's", async () => {
    const { daemon, hostile, victim, hostileTarget, victimTarget } = neighbour;
    let hostileAnswered = false;
    const spinning = hostile
      .requests({
        socketPath: daemon.requestSocket,
        targetPid: hostileTarget,
        bytes: STORM_BYTES,
        total: 1,
        concurrency: 1,
      })
      .finally(() => (hostileAnswered = true));
    // Its evaluation holds the slot: it went on in the worker.
    await waitFor(
      async () => ((await daemon.admin.health()).detail?.inFlight === 1 ? true : undefined),
      'the hostile run in the worker',
    );

    const answered = await victim.requests({
      socketPath: daemon.requestSocket,
      targetPid: victimTarget,
      bytes: 2n * MiB,
      total: 20,
      concurrency: 1,
    });
    expect(hostileAnswered).toBe(false);
    expect(answered).toMatchObject({ answered: 20, decisions: { allow: 20 }, errorCount: 0 });

    const spun = await spinning;
    expect(spun).toMatchObject({ answered: 1, decisions: { deny: 1 }, errorKinds: { timeout: 1 } });
  }, 120_000);
});
