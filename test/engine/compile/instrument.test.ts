// The instrumented module keeps the runtime protocol: __capgate_fuel meters every function
// entry and loop iteration (start function included), memory is capped, and failed grows
// set __capgate_oom. Instances here are raw WebAssembly instances with inert host imports:
// this tests the rewrite, not the executor.
import { describe, expect, it } from 'vitest';
import { compilePolicy, FUEL_EXPORT, OOM_EXPORT } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { memoryPlanOf, policyImports } from '../../../runtime/engine/policy-memory.ts';
import type { EngineLimits } from '../../../runtime/engine/limits.ts';
import { componentFromCore, componentFromWat, coreFromWat, policyWat } from '../../support/components.ts';

interface Guest {
  module: WebAssembly.Module;
  evaluate(op: number, rpid: number, ruid: number, tpid: number, bytes: bigint): number;
  memory: WebAssembly.Memory;
  fuel: WebAssembly.Global;
  oom: WebAssembly.Global;
}

async function compileModule(wat: string, limits: EngineLimits = DEFAULT_LIMITS): Promise<WebAssembly.Module> {
  const r = await compilePolicy(await componentFromWat(wat), limits);
  if (!r.ok) throw new Error(`rejected: ${r.kind}: ${r.message}`);
  return r.policy.module;
}

const inert = {
  'capgate:policy/host@1.0.0': { 'set-memlock': () => {}, 'query-vm-identity': () => {}, log: () => {} },
};

function instantiate(module: WebAssembly.Module): Guest {
  // The instrumented module imports its memory (the engine recycles memories); a new one here.
  const e = new WebAssembly.Instance(module, policyImports(module, inert)).exports;
  return {
    module,
    evaluate: e.evaluate as Guest['evaluate'],
    memory: e.memory as WebAssembly.Memory,
    fuel: e[FUEL_EXPORT] as WebAssembly.Global,
    oom: e[OOM_EXPORT] as WebAssembly.Global,
  };
}

function fuelUsed(g: Guest, limits: EngineLimits = DEFAULT_LIMITS): number {
  return limits.fuel - Number(g.fuel.value as bigint);
}

// evaluate loops `bytes` times, calling a helper each iteration.
const COUNTING = policyWat({
  evaluateBody: `(local $i i64)
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (local.get $bytes)))
      (local.set $i (call $inc (local.get $i)))
      (br $next)))
    (i32.const 1024)`,
  extra: '(func $inc (param i64) (result i64) (i64.add (local.get 0) (i64.const 1)))',
});

describe('fuel', () => {
  it('is deterministic and grows linearly with the work done', async () => {
    const module = await compileModule(COUNTING);
    const run = (n: bigint): number => {
      const g = instantiate(module);
      g.evaluate(0, 1, 2, 3, n);
      return fuelUsed(g);
    };
    const at10 = run(10n);
    expect(run(10n)).toBe(at10);
    // A second upload of the same component instruments identically.
    const again = instantiate(await compileModule(COUNTING));
    again.evaluate(0, 1, 2, 3, 10n);
    expect(fuelUsed(again)).toBe(at10);
    // Each iteration pays the loop header and the helper's entry: a constant per-iteration cost.
    const perIteration = (run(20n) - at10) / 10;
    expect(perIteration).toBeGreaterThan(1);
    expect(run(30n) - run(20n)).toBe(perIteration * 10);
    expect(run(0n)).toBeGreaterThan(0);
  });

  it('small helpers charged at their call sites are still paid for, in full', async () => {
    const withHelper = (body: string): string =>
      COUNTING.replace(
        '(func $inc (param i64) (result i64) (i64.add (local.get 0) (i64.const 1)))',
        `(func $inc (param i64) (result i64) ${body} (i64.add (local.get 0) (i64.const 1)))`,
      );
    const perIteration = async (wat: string): Promise<number> => {
      const module = await compileModule(wat);
      const used = (n: bigint): number => {
        const g = instantiate(module);
        g.evaluate(0, 1, 2, 3, n);
        return fuelUsed(g);
      };
      return (used(20n) - used(10n)) / 10;
    };
    const small = await perIteration(withHelper(''));
    const big = await perIteration(withHelper('(drop (i32.const 1))'.repeat(50)));
    // 50 drops of a const are 100 expressions more in the helper, paid on every call.
    expect(big - small).toBeGreaterThanOrEqual(100);
  });

  it('an infinite loop in evaluate traps with the fuel global negative', async () => {
    const limits = { ...DEFAULT_LIMITS, fuel: 100_000 };
    const g = instantiate(
      await compileModule(policyWat({ evaluateBody: '(loop $forever (br $forever)) (i32.const 0)' }), limits),
    );
    expect(() => g.evaluate(0, 1, 2, 3, 0n)).toThrow(WebAssembly.RuntimeError);
    expect(g.fuel.value as bigint).toBeLessThan(0n);
    expect(fuelUsed(g, limits)).toBeGreaterThan(limits.fuel);
  });

  it('infinite recursion through calls is metered at function entry', async () => {
    const limits = { ...DEFAULT_LIMITS, fuel: 1000 };
    const g = instantiate(
      await compileModule(
        policyWat({
          evaluateBody: '(call $spin (i32.const 0))',
          extra: '(func $spin (param i32) (result i32) (call $spin (local.get 0)))',
        }),
        limits,
      ),
    );
    expect(() => g.evaluate(0, 1, 2, 3, 0n)).toThrow(WebAssembly.RuntimeError);
    expect(g.fuel.value as bigint).toBeLessThan(0n);
  });

  it('an infinite loop in the start function: instantiation runs no guest code, the first call traps out of fuel', async () => {
    const g = instantiate(
      await compileModule(policyWat({ extra: '(func $init (loop $forever (br $forever))) (start $init)' })),
    );
    expect(g.fuel.value).toBe(BigInt(DEFAULT_LIMITS.fuel));
    expect(() => g.evaluate(0, 1, 2, 3, 0n)).toThrow(WebAssembly.RuntimeError);
    expect(g.fuel.value as bigint).toBeLessThan(0n);
  });

  it('the start function still runs once, before evaluate', async () => {
    const g = instantiate(
      await compileModule(
        policyWat({
          extra:
            '(global $n (mut i32) (i32.const 0)) (func $init (global.set $n (i32.add (global.get $n) (i32.const 1)))) (start $init)',
          evaluateBody: '(i32.store (i32.const 1024) (global.get $n)) (i32.const 1024)',
        }),
      ),
    );
    const view = (): number => new Uint32Array(g.memory.buffer)[1024 / 4]!;
    expect(g.evaluate(0, 1, 2, 3, 0n)).toBe(1024);
    expect(view()).toBe(1);
    g.evaluate(0, 1, 2, 3, 0n);
    expect(view()).toBe(1);
  });
});

describe('memory', () => {
  // grows by `bytes` pages; stores the result of memory.grow at 1024 and returns 1024.
  const GROW = (memory: string): string =>
    policyWat({
      memory,
      evaluateBody: '(i32.store (i32.const 1024) (memory.grow (i32.wrap_i64 (local.get $bytes)))) (i32.const 1024)',
    });
  const grown = (g: Guest): number => new Int32Array(g.memory.buffer)[1024 / 4]!;
  const limits = { ...DEFAULT_LIMITS, memoryPages: 4 };

  it('memory.grow up to limits.memoryPages succeeds and leaves the oom flag clear', async () => {
    const g = instantiate(await compileModule(GROW('(memory (export "memory") 1)'), limits));
    g.evaluate(0, 1, 2, 3, 3n);
    expect(grown(g)).toBe(1); // old size in pages
    expect(g.memory.buffer.byteLength).toBe(4 * 65536);
    expect(g.oom.value).toBe(0);
  });

  it('memory.grow beyond limits.memoryPages returns -1 and sets the oom flag', async () => {
    const g = instantiate(await compileModule(GROW('(memory (export "memory") 1)'), limits));
    g.evaluate(0, 1, 2, 3, 4n);
    expect(grown(g)).toBe(-1);
    expect(g.memory.buffer.byteLength).toBe(65536);
    expect(g.oom.value).toBe(1);
  });

  it('memory.grow(0) answers the size without growing: the buffer is not replaced', async () => {
    // V8's grow(0) detaches the buffer and updates every instance that ever used the memory, a
    // cost that grows with the decisions a recycled memory served; the helper never calls it.
    const g = instantiate(await compileModule(GROW('(memory (export "memory") 1)'), limits));
    g.evaluate(0, 1, 2, 3, 1n);
    const buffer = g.memory.buffer;
    g.evaluate(0, 1, 2, 3, 0n);
    expect(grown(g)).toBe(2);
    expect(buffer.byteLength).toBe(2 * 65536); // not detached
    expect(g.memory.buffer === buffer).toBe(true);
    expect(g.oom.value).toBe(0);
  });

  it('a grow past what the maximum leaves returns -1 and sets the flag, whatever the delta as u32', async () => {
    const module = await compileModule(GROW('(memory (export "memory") 1)'), limits);
    for (const delta of [4n, 5n, 0x10000n, 0x7fffffffn, 0x80000000n, 0xffffffffn]) {
      const g = instantiate(module);
      const buffer = g.memory.buffer;
      g.evaluate(0, 1, 2, 3, delta);
      expect({ delta, result: grown(g), oom: g.oom.value }).toEqual({ delta, result: -1, oom: 1 });
      expect(buffer.byteLength).toBe(65536);
      expect(g.memory.buffer === buffer).toBe(true);
    }
    // What is left shrinks as memory grows: from 3 pages of 4, 2 more is refused and 1 is not.
    const g = instantiate(module);
    g.evaluate(0, 1, 2, 3, 2n);
    g.evaluate(0, 1, 2, 3, 2n);
    expect([grown(g), g.memory.buffer.byteLength, g.oom.value]).toEqual([-1, 3 * 65536, 1]);
    g.evaluate(0, 1, 2, 3, 1n);
    expect([grown(g), g.memory.buffer.byteLength]).toEqual([3, 4 * 65536]);
  });

  it('a grow its fuel cannot pay for traps before the memory grows', async () => {
    const small = { ...limits, fuel: 10_000 };
    const g = instantiate(await compileModule(GROW('(memory (export "memory") 1)'), small));
    expect(() => g.evaluate(0, 1, 2, 3, 3n)).toThrow(WebAssembly.RuntimeError); // 3 pages: 12,288 units
    expect(g.memory.buffer.byteLength).toBe(65536); // so the memory can be recycled
    expect(fuelUsed(g, small)).toBeGreaterThan(small.fuel);
    expect(g.oom.value).toBe(0);
  });

  it('the memory becomes an import whose limits are recorded for the run time', async () => {
    const m = await compileModule(GROW('(memory (export "memory") 3 9)'), limits);
    expect(WebAssembly.Module.imports(m).filter((i) => i.kind === 'memory')).toEqual([
      { module: 'capgate:engine', name: 'memory', kind: 'memory' },
    ]);
    expect(WebAssembly.Module.exports(m).filter((e) => e.kind === 'memory')).toEqual([
      { name: 'memory', kind: 'memory' },
    ]);
    expect(memoryPlanOf(m)).toEqual({ initialPages: 3, maximumPages: 4 });
    // A memory larger than the declared maximum does not link: the cap cannot be bypassed.
    expect(
      () =>
        new WebAssembly.Instance(m, {
          ...inert,
          'capgate:engine': { memory: new WebAssembly.Memory({ initial: 3, maximum: 5 }) },
        }),
    ).toThrow(WebAssembly.LinkError);
  });

  it("a guest's own memory-plan custom section is dropped, so it cannot mislead the run time", async () => {
    const core = coreFromWat(GROW('(memory (export "memory") 1)'));
    const name = new TextEncoder().encode('capgate:memory-plan');
    const forged = Uint8Array.of(0, name.length + 1 + 8, name.length, ...name, 9, 0, 0, 0, 9, 0, 0, 0);
    const r = await compilePolicy(await componentFromCore(Uint8Array.of(...core, ...forged)), limits);
    if (!r.ok) throw new Error(`rejected: ${r.kind}: ${r.message}`);
    expect(WebAssembly.Module.customSections(r.policy.module, 'capgate:memory-plan')).toHaveLength(1);
    expect(memoryPlanOf(r.policy.module)).toEqual({ initialPages: 1, maximumPages: 4 });
  });

  it('a declared maximum below the limit is kept', async () => {
    const g = instantiate(await compileModule(GROW('(memory (export "memory") 1 2)'), limits));
    expect(memoryPlanOf(g.module)).toEqual({ initialPages: 1, maximumPages: 2 });
    g.evaluate(0, 1, 2, 3, 2n);
    expect(grown(g)).toBe(-1);
    expect(g.oom.value).toBe(1);
  });

  it('a grow bomb in a loop ends at the cap with the flag set', async () => {
    const g = instantiate(
      await compileModule(
        policyWat({
          evaluateBody:
            '(loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) (i32.const 1024)',
        }),
        limits,
      ),
    );
    g.evaluate(0, 1, 2, 3, 0n);
    expect(g.memory.buffer.byteLength).toBe(4 * 65536);
    expect(g.oom.value).toBe(1);
  });
});
