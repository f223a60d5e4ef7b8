// Recycled memories must be indistinguishable from new ones: a policy that reads memory it did
// not initialise sees zeros after a previous decision wrote there, its data segments are intact,
// and a memory that grew is never handed out again (the next decision sees the initial size).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../../runtime/capabilities/simulated/capabilities.ts';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { evaluatePrepared } from '../../../runtime/engine/evaluate-instance.ts';
import { FreshMemoryPool, MAX_MEMORY_USES } from '../../../runtime/engine/fresh-memory-pool.ts';
import { InstanceFactory } from '../../../runtime/engine/instance-factory.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { componentFromWat } from '../../support/components.ts';
import { request, simulated, world } from './fixtures/worlds.ts';

/**
 * Denies "dirty-heap" if any of a few never-initialised words is non-zero, "dirty-data" if its
 * data segment no longer reads "DATA", "grown" if memory is not at its initial 2 pages. Then it
 * dirties all of those places, and with bytes == 1 also grows memory by one page and writes there.
 */
const WITNESS_WAT = `(module
  (memory (export "memory") 2 8)
  (data (i32.const 100) "DATA")
  (data (i32.const 200) "dirty-heap")
  (data (i32.const 220) "dirty-data")
  (data (i32.const 240) "grown")
  (func $deny (param $p i32) (param $l i32) (result i32)
    (i32.store8 (i32.const 1024) (i32.const 1))
    (i32.store (i32.const 1028) (local.get $p))
    (i32.store (i32.const 1032) (local.get $l))
    (i32.const 1024))
  (func (export "evaluate") (param $op i32) (param $rpid i32) (param $ruid i32) (param $tpid i32) (param $bytes i64) (result i32)
    (if (i32.ne (memory.size) (i32.const 2)) (then (return (call $deny (i32.const 240) (i32.const 5)))))
    (if (i32.or (i32.or (i32.load (i32.const 4096)) (i32.load (i32.const 65532)))
                (i32.or (i32.load (i32.const 131068)) (i32.load8_u (i32.const 1024))))
      (then (return (call $deny (i32.const 200) (i32.const 10)))))
    (if (i32.ne (i32.load (i32.const 100)) (i32.const 0x41544144))
      (then (return (call $deny (i32.const 220) (i32.const 10)))))
    (i32.store (i32.const 4096) (i32.const 0xdeadbeef))
    (i32.store (i32.const 65532) (i32.const 0xdeadbeef))
    (i32.store (i32.const 131068) (i32.const 0xdeadbeef))
    (i32.store (i32.const 100) (i32.const 0x58585858))
    (if (i64.eq (local.get $bytes) (i64.const 1))
      (then (drop (memory.grow (i32.const 1))) (i32.store (i32.const 131072) (i32.const 0xdeadbeef))))
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 2048))
  (func (export "cabi_post_evaluate") (param i32))
)`;

let policy: CompiledPolicy;

beforeAll(async () => {
  // A generous deadline: the machine is shared, and no test here is about time.
  const r = await compilePolicy(await componentFromWat(WITNESS_WAT), { ...DEFAULT_LIMITS, deadlineMs: 5_000 });
  if (!r.ok) throw new Error(`${r.kind}: ${r.message}`);
  policy = r.policy;
});

describe('FreshMemoryPool', () => {
  it('hands a memory back zeroed and at its initial size, and the next instance runs in it', () => {
    const factory = new InstanceFactory(policy.module);
    const pool = factory.memories!;
    const caps = createSimulatedCapabilities(world());
    const first = factory.prepare();
    expect(evaluatePrepared(first, request({ bytes: 0n }), caps, policy.limits)).toMatchObject({ decision: 'allow' });
    expect(new Uint32Array(first.memory!.buffer)[4096 / 4]).toBe(0xdeadbeef); // it did write
    expect(factory.dropsOnRecycle(first)).toBe(0);
    expect(factory.recycle(first)).toBe(0); // kept: nothing left to the garbage collector
    expect(pool.recycled).toBe(1);

    const second = factory.prepare();
    expect(second.memory).toBe(first.memory); // the same memory, reused ...
    expect(second.instance!.exports['memory']).toBe(first.memory);
    // ... and the policy cannot tell: no leftover bytes, data segment re-applied.
    expect(evaluatePrepared(second, request({ bytes: 0n }), caps, policy.limits)).toMatchObject({
      decision: 'allow',
      reason: '',
    });
  });

  it('drops a memory that grew: the next instance gets a new one at the initial size', () => {
    const factory = new InstanceFactory(policy.module);
    const pool = factory.memories!;
    const caps = createSimulatedCapabilities(world());
    const first = factory.prepare();
    expect(evaluatePrepared(first, request({ bytes: 1n }), caps, policy.limits)).toMatchObject({ decision: 'allow' });
    expect(first.memory!.buffer.byteLength).toBe(3 * 65536);
    // Known before it is given back (the worker answers first), and the same when it is.
    expect(factory.dropsOnRecycle(first)).toBe(3 * 65536);
    expect(factory.recycle(first)).toBe(3 * 65536);
    expect(pool.dropped).toBe(1);
    const second = factory.prepare();
    expect(second.memory).not.toBe(first.memory);
    expect(evaluatePrepared(second, request({ bytes: 0n }), caps, policy.limits)).toMatchObject({
      decision: 'allow',
      reason: '',
    });
  });

  it('a memory serves at most MAX_MEMORY_USES instances, then a new one takes over', () => {
    // V8 keeps every instance a memory served on its list until a full GC, and each grow that
    // succeeds updates them all: a memory reused without end makes a grow cost without bound.
    const factory = new InstanceFactory(policy.module);
    const caps = createSimulatedCapabilities(world());
    const uses = new Map<WebAssembly.Memory, number>();
    for (let i = 0; i < 2 * MAX_MEMORY_USES + 1; i++) {
      const prepared = factory.prepare();
      expect(evaluatePrepared(prepared, request({ bytes: 0n }), caps, policy.limits)).toMatchObject({
        decision: 'allow',
        reason: '',
      });
      uses.set(prepared.memory!, (uses.get(prepared.memory!) ?? 0) + 1);
      factory.recycle(prepared);
    }
    expect([...uses.values()]).toEqual([MAX_MEMORY_USES, MAX_MEMORY_USES, 1]);
    expect(factory.memories!.dropped).toBe(2);
  });

  it('zeroes whatever was written, e.g. by an instantiation whose data segments failed half-way', () => {
    const plan = { initialPages: 1, maximumPages: 1 };
    const pool = new FreshMemoryPool(plan);
    const memory = pool.take();
    const bytes = new Uint8Array(memory.buffer);
    bytes[10] = 7;
    pool.give(memory);
    expect(pool.take()).toBe(memory);
    expect(bytes.every((b) => b === 0)).toBe(true);
  });

  it('refuses a memory given back twice', () => {
    const pool = new FreshMemoryPool({ initialPages: 1, maximumPages: 2 });
    const m = pool.take();
    pool.give(m);
    expect(() => pool.give(m)).toThrow(/given back twice/);
  });
});

describe('fresh state through the engine (one worker, so memories are recycled)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = new Engine({ workers: 1, linuxCapabilities: false, limits: { deadlineMs: 5_000 } });
    await engine.ready();
    engine.load(policy);
  });
  afterAll(async () => {
    await engine.close();
  });

  it('every decision sees zeroed memory, intact data and the initial size, whatever the previous one did', async () => {
    for (const bytes of [0n, 0n, 1n, 0n, 1n, 1n, 0n, 0n]) {
      const o = await engine.evaluate(policy.sha256, request({ bytes }), simulated());
      expect(o.errorDetail).toBeUndefined();
      expect({ bytes, decision: o.decision, reason: o.reason }).toEqual({ bytes, decision: 'allow', reason: '' });
    }
  });
});
