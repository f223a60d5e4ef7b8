// Grown wasm memories never belong to the engine's (the daemon's main) thread: V8 frees a dropped
// memory only in a full mark-compact of the isolate that made it, so a policy that grows its
// memory on every decision made this thread's isolate collect every few seconds (the isolation
// bench's page-storm). A speculative run's memory cannot grow: the run that would grow it
// continues in a worker, with the calls it made replayed there, and its answer is the worker's.
// Real compiled hostile policies (test/support/hostile-policies.ts), real workers; the memories
// this thread makes are watched through WebAssembly.Memory (workers have their own).
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { Engine, type EngineOptions } from '../../../runtime/engine/engine.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import type { CapabilityCall } from '../../../runtime/engine/outcome.ts';
import type { TapeEntry } from '../../../runtime/engine/speculative/capability-tape.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { hostilePolicy, STORM_BYTES } from '../../support/hostile-policies.ts';
import { memlockOf, spawnVmRoot } from '../../support/vm-root.ts';
import { request, simulated } from './fixtures/worlds.ts';

const PAGE = 65536;
const MiB = 1024n * 1024n;
/** The page-storm's memory after a storm, in the worker: its initial page and 21 grown ones. */
const STORM_DROP = 22 * PAGE;

/** Every memory made on this thread while the tests run (the engine's pool makes them with `new`). */
const made: WebAssembly.Memory[] = [];
const OriginalMemory = WebAssembly.Memory;
const children: ChildProcess[] = [];
const engines: Engine[] = [];
let pageStorm: CompiledPolicy;
let memlockThenGrow: CompiledPolicy;

async function compile(bytes: Uint8Array): Promise<CompiledPolicy> {
  const r = await compilePolicy(bytes, { ...DEFAULT_LIMITS, deadlineMs: 10_000 });
  if (!r.ok) throw new Error(`${r.kind}: ${r.message}`);
  return r.policy;
}

beforeAll(async () => {
  pageStorm = await compile(await hostilePolicy('page-storm', { onStormOnly: true }));
  memlockThenGrow = await compile(await hostilePolicy('memlock-then-grow'));
  WebAssembly.Memory = class extends OriginalMemory {
    constructor(descriptor: WebAssembly.MemoryDescriptor) {
      super(descriptor);
      made.push(this);
    }
  } as typeof WebAssembly.Memory;
});

afterAll(async () => {
  WebAssembly.Memory = OriginalMemory;
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(engines.map((e) => e.close()));
});

function engine(options: EngineOptions, ...policies: CompiledPolicy[]): Engine {
  const e = new Engine({ workers: 1, limits: { deadlineMs: 10_000 }, clock: () => 0, ...options });
  for (const p of policies) e.load(p);
  engines.push(e);
  return e;
}

/** The memories made on this thread since `from`, and whether any of them is past its first page. */
function grownHere(from: number): number[] {
  return made
    .slice(from)
    .map((m) => m.buffer.byteLength)
    .filter((bytes) => bytes > PAGE);
}

/** A call as both engines report it (the effect's record aside: its `before` is the kernel's at the time). */
const plain = (calls: readonly CapabilityCall[]): unknown[] =>
  calls.map(({ op, pid, result, ...rest }) => ({ op, pid, result, ...('bytes' in rest ? { bytes: rest.bytes } : {}) }));

describe("grown memories never belong to this thread's isolate", () => {
  it('page-storm: the storm continues in a worker and grows there; calm requests of the same policy are still decided here', async () => {
    const from = made.length;
    const e = engine({ linuxCapabilities: false }, pageStorm);
    const calm = await e.evaluate(pageStorm.sha256, request({ bytes: 4096n }), simulated());
    expect(calm.decision).toBe('allow');
    expect(calm.droppedMemoryBytes).toBeUndefined();
    expect(e.inlineStats).toMatchObject({ decided: 1, continued: 0 });
    const storm = await e.evaluate(pageStorm.sha256, request({ bytes: STORM_BYTES }), simulated());
    // The worker's memory grew and is dropped there; this thread's memory was recycled.
    expect(storm).toMatchObject({ decision: 'allow', droppedMemoryBytes: STORM_DROP });
    expect(e.inlineStats).toMatchObject({ decided: 1, continued: 1, growthRefused: 1 });
    expect(made.length).toBeGreaterThan(from);
    expect(grownHere(from)).toEqual([]);
  });

  it('page-storm: the decision is the one a worker alone makes', async () => {
    const here = engine({ linuxCapabilities: false }, pageStorm);
    const workers = engine({ linuxCapabilities: false, inlineFuel: 0 }, pageStorm);
    for (const bytes of [STORM_BYTES, 4096n]) {
      const [a, b] = await Promise.all(
        [here, workers].map((e) => e.evaluate(pageStorm.sha256, request({ bytes }), simulated())),
      );
      expect({ ...a, durationUs: 0 }).toEqual({ ...b, durationUs: 0 });
    }
  });

  it('memlock-then-grow (real process): the set-memlock made here is replayed in the worker, acted on once, and listed once', async () => {
    const from = made.length;
    const vm = spawnVmRoot((pid) => ({ uuid: `vm-${pid}`, name: 'grow', id: 1, labels: [] }));
    children.push(vm.child);
    const req = request({ requesterPid: vm.pid, targetPid: vm.pid, bytes: 4n * MiB });
    const tapes: TapeEntry[][] = [];
    const e = engine({ seams: { replayTape: (t) => (tapes.push([...t]), t) } }, memlockThenGrow);
    const out = await e.evaluate(memlockThenGrow.sha256, req, vm.spec);
    expect(out, out.errorDetail).toMatchObject({ decision: 'allow', droppedMemoryBytes: STORM_DROP });
    expect(e.inlineStats).toMatchObject({ decided: 0, continued: 1, growthRefused: 1 });
    // The worker was given this thread's two calls to replay: it did not make them again.
    expect(tapes.map((t) => t.length)).toEqual([2]);
    expect(plain(out.capabilityCalls)).toEqual([
      { op: 'query-vm-identity', pid: vm.pid, result: 'some' },
      { op: 'set-memlock', pid: vm.pid, result: 'ok', bytes: 4n * MiB },
    ]);
    expect(memlockOf(vm.pid).soft).toBe(4n * MiB);
    expect(grownHere(from)).toEqual([]);
    // The same calls as a worker alone makes (on another process of its own).
    const other = spawnVmRoot((pid) => ({ uuid: `vm-${pid}`, name: 'grow', id: 2, labels: [] }));
    children.push(other.child);
    const alone = await engine({ inlineFuel: 0 }, memlockThenGrow).evaluate(
      memlockThenGrow.sha256,
      request({ requesterPid: other.pid, targetPid: other.pid, bytes: 4n * MiB }),
      other.spec,
    );
    expect(plain(alone.capabilityCalls)).toEqual(
      plain(out.capabilityCalls).map((c) => ({ ...(c as object), pid: other.pid })),
    );
  });

  it('a policy that sees its grow refused here cannot act on it: its next call stops the run before it does anything', async () => {
    // Refused: set-memlock(target, 1 MiB); granted (as in the worker): set-memlock(target, bytes).
    const reacting = await compile(
      await componentFromWat(
        policyWat({
          evaluateBody: `(if (i32.lt_s (memory.grow (i32.const 1)) (i32.const 0))
            (then (call $set_memlock (local.get $tpid) (i64.const ${MiB}) (i32.const 3072)))
            (else (call $set_memlock (local.get $tpid) (local.get $bytes) (i32.const 3072))))
            (i32.const 1024)`,
        }),
      ),
    );
    const vm = spawnVmRoot((pid) => ({ uuid: `vm-${pid}`, name: 'react', id: 3, labels: [] }));
    children.push(vm.child);
    const tapes: number[] = [];
    const e = engine({ seams: { replayTape: (t) => (tapes.push(t.length), t) } }, reacting);
    const out = await e.evaluate(
      reacting.sha256,
      request({ requesterPid: vm.pid, targetPid: vm.pid, bytes: 4n * MiB }),
      vm.spec,
    );
    expect(out, out.errorDetail).toMatchObject({ decision: 'allow' });
    expect(tapes).toEqual([0]);
    expect(plain(out.capabilityCalls)).toEqual([{ op: 'set-memlock', pid: vm.pid, result: 'ok', bytes: 4n * MiB }]);
    expect(memlockOf(vm.pid).soft).toBe(4n * MiB);
  });

  it('a policy that sees its grow refused here and answers at once: the answer is the worker’s', async () => {
    const denyingOnRefusal = await compile(
      await componentFromWat(
        policyWat({
          evaluateBody: `(if (i32.lt_s (memory.grow (i32.const 1)) (i32.const 0)) (then (unreachable))) (i32.const 1024)`,
        }),
      ),
    );
    const e = engine({ linuxCapabilities: false }, denyingOnRefusal);
    const out = await e.evaluate(denyingOnRefusal.sha256, request(), simulated());
    expect(out, out.errorDetail).toMatchObject({ decision: 'allow' });
    expect(e.inlineStats).toMatchObject({ decided: 0, continued: 1, growthRefused: 1 });
  });
});
