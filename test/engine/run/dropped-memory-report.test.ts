// Every evaluation reports the wasm memory it left to the garbage collector (a memory that grew
// is dropped, not recycled; memories grow only in the workers), wherever it ran: the daemon charges the VM that asked for what
// collecting it costs after the answer (engine/dropped-memory-cost.ts). With the real compiled
// page-storm policy of the isolation bench (21 one-page grows: 22 pages dropped a decision).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { Engine, type EngineOptions } from '../../../runtime/engine/engine.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { DROPPED_MEMORY_MS_PER_MIB, droppedMemoryCostMs } from '../../../runtime/engine/dropped-memory-cost.ts';
import { BURN, hostilePolicy, STORM_BYTES } from '../../support/hostile-policies.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { request, simulated } from './fixtures/worlds.ts';

const PAGE = 65536;
/** The page-storm's memory after a storm: its initial page and 21 grown ones. */
const STORM_DROP = 22 * PAGE;

const engines: Engine[] = [];
let storm: CompiledPolicy;
/** Grows 5 pages, then burns past the main thread's slice: its run there is continued in a worker. */
let growThenBurn: CompiledPolicy;

async function compile(bytes: Uint8Array): Promise<CompiledPolicy> {
  const r = await compilePolicy(bytes, { ...DEFAULT_LIMITS, deadlineMs: 10_000 });
  if (!r.ok) throw new Error(`${r.kind}: ${r.message}`);
  return r.policy;
}

beforeAll(async () => {
  storm = await compile(await hostilePolicy('page-storm', { onStormOnly: true }));
  growThenBurn = await compile(
    await componentFromWat(
      policyWat({ evaluateBody: `(local $i i32) (drop (memory.grow (i32.const 5))) ${BURN} (i32.const 1024)` }),
    ),
  );
});

afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
});

function engine(options: EngineOptions): Engine {
  const e = new Engine({ workers: 1, linuxCapabilities: false, limits: { deadlineMs: 10_000 }, ...options });
  e.load(storm);
  e.load(growThenBurn);
  engines.push(e);
  return e;
}

const stormRequest = request({ bytes: STORM_BYTES });
const calmRequest = request({ bytes: 4096n });

describe('dropped memory is reported with the outcome', () => {
  it('by a worker run: the bytes of the memory it will drop once it has answered', async () => {
    const e = engine({ inlineFuel: 0 });
    for (let i = 0; i < 3; i++) {
      const o = await e.evaluate(storm.sha256, stormRequest, simulated());
      expect(o).toMatchObject({ decision: 'allow', droppedMemoryBytes: STORM_DROP });
    }
    // A run whose memory did not grow is recycled: nothing to report.
    const calm = await e.evaluate(storm.sha256, calmRequest, simulated());
    expect(calm.decision).toBe('allow');
    expect(calm.droppedMemoryBytes).toBeUndefined();
  });

  it('by a run that would grow on the calling thread: continued in a worker, whose memory grew (none grows on the calling thread)', async () => {
    const e = engine({});
    const o = await e.evaluate(storm.sha256, stormRequest, simulated());
    expect(o).toMatchObject({ decision: 'allow', droppedMemoryBytes: STORM_DROP });
    expect(e.inlineStats).toMatchObject({ decided: 0, continued: 1, growthRefused: 1 });
  });

  it('by a run decided on the calling thread, which never grows: nothing', async () => {
    const e = engine({});
    const calm = await e.evaluate(storm.sha256, calmRequest, simulated());
    expect(calm.decision).toBe('allow');
    expect(calm.droppedMemoryBytes).toBeUndefined();
    expect(e.inlineStats).toMatchObject({ decided: 1, continued: 0 });
  });

  it('by a run continued in a worker past its slice: the worker grew its memory, the first run did not', async () => {
    const e = engine({});
    const o = await e.evaluate(growThenBurn.sha256, request(), simulated());
    expect(e.inlineStats).toMatchObject({ decided: 0, continued: 1 });
    expect(o).toMatchObject({ decision: 'allow', droppedMemoryBytes: 6 * PAGE });
  });
});

describe('what dropped memory costs (the price the pipeline charges the VM)', () => {
  const mib = 1024 * 1024;
  it('is the bytes at the rate per MiB; nothing at rate 0 or for no bytes', () => {
    expect(droppedMemoryCostMs(3 * mib, 2)).toBe(6);
    expect(droppedMemoryCostMs(3 * mib, 0)).toBe(0);
    expect(droppedMemoryCostMs(mib)).toBe(DROPPED_MEMORY_MS_PER_MIB);
    expect(droppedMemoryCostMs(undefined)).toBe(0);
  });
});
