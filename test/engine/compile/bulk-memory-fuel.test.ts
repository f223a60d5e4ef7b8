// memory.fill, memory.copy and memory.init pay fuel in proportion to their size (one unit per
// 16 bytes, charged before the operation), so fuel bounds the work of a policy that moves
// megabytes with single instructions. Real components through compilePolicy, evaluated
// in-thread by evaluateOnce (test/support/evaluate-once.ts) or by the Engine's workers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../../runtime/capabilities/simulated/capabilities.ts';
import { compilePolicy, FUEL_EXPORT } from '../../../runtime/engine/compile.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { evaluateOnce } from '../../support/evaluate-once.ts';
import { DEFAULT_LIMITS, type EngineLimits } from '../../../runtime/engine/limits.ts';
import type { Outcome } from '../../../runtime/engine/outcome.ts';
import { policyImports } from '../../../runtime/engine/policy-memory.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { request, simulated, world } from '../run/fixtures/worlds.ts';

async function compile(wat: string, limits: EngineLimits = DEFAULT_LIMITS): Promise<WebAssembly.Module> {
  const r = await compilePolicy(await componentFromWat(wat), limits);
  if (!r.ok) throw new Error(`rejected: ${r.kind}: ${r.message}`);
  return r.policy.module;
}

/** One evaluation; the request's `bytes` is the guest's $bytes parameter. */
function evaluate(module: WebAssembly.Module, bytes: number, limits: EngineLimits = DEFAULT_LIMITS): Outcome {
  return evaluateOnce(module, request({ bytes: BigInt(bytes) }), createSimulatedCapabilities(world()), limits);
}

const SIZE = '(i32.wrap_i64 (local.get $bytes))';
const SEGMENT_BYTES = 256 * 1024;
/** A passive data segment $seg of SEGMENT_BYTES bytes 'x'. */
const SEGMENT = `(data $seg "${'x'.repeat(SEGMENT_BYTES)}")`;

// Each operation with size $bytes, at addresses that keep sizes up to SEGMENT_BYTES in bounds of 16 pages.
const OPERATIONS: Record<string, string> = {
  'memory.fill': `(memory.fill (i32.const 4096) (i32.const 0xab) ${SIZE})`,
  'memory.copy': `(memory.copy (i32.const 4096) (i32.const 300000) ${SIZE})`,
  'memory.init': `(memory.init $seg (i32.const 4096) (i32.const 0) ${SIZE})`,
};

function policyDoing(op: string, memory = '(memory (export "memory") 16)'): string {
  return policyWat({ memory, extra: SEGMENT, evaluateBody: `${op} (i32.const 1024)` });
}

describe('fuel for bulk-memory operations', () => {
  for (const [name, op] of Object.entries(OPERATIONS)) {
    it(`${name} of N bytes costs N/16 more fuel; a small one costs what it did`, async () => {
      const module = await compile(policyDoing(op));
      const used = (n: number): number => {
        const o = evaluate(module, n);
        expect(o.errorDetail).toBeUndefined();
        expect(o.decision).toBe('allow');
        return o.fuelUsed;
      };
      const base = used(0);
      // The static charge of the expression and its operands, nothing more below 16 bytes.
      expect(base).toBeLessThan(20);
      expect(used(15)).toBe(base);
      expect(used(16)).toBe(base + 1);
      expect(used(SEGMENT_BYTES)).toBe(base + SEGMENT_BYTES / 16);
      expect(used(SEGMENT_BYTES)).toBeGreaterThanOrEqual(SEGMENT_BYTES / 16);
    });
  }

  it('an operation in a small helper charged at its call sites is still paid for by size', async () => {
    const module = await compile(
      policyWat({
        memory: '(memory (export "memory") 2)',
        extra: '(func $clear (param i32) (memory.fill (i32.const 0) (i32.const 0) (local.get 0)))',
        evaluateBody: `(call $clear ${SIZE}) (call $clear ${SIZE}) (i32.const 1024)`,
      }),
    );
    expect(evaluate(module, 65536).fuelUsed - evaluate(module, 0).fuelUsed).toBe(2 * 4096);
  });

  for (const name of ['memory.fill', 'memory.copy', 'memory.init'] as const) {
    it(`an out-of-bounds ${name} still traps when the fuel suffices, after paying for its size`, async () => {
      // One page: 4096 + SEGMENT_BYTES is past its end (and for memory.copy, so is the source).
      const o = evaluate(await compile(policyDoing(OPERATIONS[name]!, '(memory (export "memory") 1)')), SEGMENT_BYTES);
      expect(o).toMatchObject({ decision: 'deny', errorKind: 'trap' });
      expect(o.errorDetail).toMatch(/out of bounds/);
      expect(o.fuelUsed).toBeGreaterThanOrEqual(SEGMENT_BYTES / 16);
    });
  }

  it('memory.init past the end of its segment still traps', async () => {
    const o = evaluate(
      await compile(policyDoing(OPERATIONS['memory.init']!, '(memory (export "memory") 16)')),
      SEGMENT_BYTES + 1,
    );
    expect(o).toMatchObject({ decision: 'deny', errorKind: 'trap' });
    expect(o.errorDetail).toMatch(/out of bounds/);
  });

  it('the charge comes first: an operation the fuel cannot pay for traps before writing memory', async () => {
    const limits = { ...DEFAULT_LIMITS, fuel: 1000 };
    const module = await compile(policyDoing(OPERATIONS['memory.fill']!), limits);
    const inert = {
      'capgate:policy/host@1.0.0': { 'set-memlock': () => {}, 'query-vm-identity': () => {}, log: () => {} },
    };
    const e = new WebAssembly.Instance(module, policyImports(module, inert)).exports;
    const evaluateRaw = e.evaluate as (op: number, rpid: number, ruid: number, tpid: number, bytes: bigint) => number;
    expect(() => evaluateRaw(0, 1, 2, 3, 65536n)).toThrow(WebAssembly.RuntimeError);
    expect((e[FUEL_EXPORT] as WebAssembly.Global).value as bigint).toBeLessThan(0n);
    expect(new Uint8Array((e.memory as WebAssembly.Memory).buffer, 4096, 65536).every((b) => b === 0)).toBe(true);
    // Through the executor: fuel-exhausted, also when the size is out of bounds anyway.
    expect(evaluate(module, 65536, limits)).toMatchObject({ decision: 'deny', errorKind: 'fuel-exhausted' });
    expect(evaluate(module, 0x7fffffff, limits)).toMatchObject({ decision: 'deny', errorKind: 'fuel-exhausted' });
  });

  it('operands are evaluated in their original order and the operations do what they did', async () => {
    // $arg(id, value) appends id to the decimal number in $order and returns value; the
    // evaluate body checks $order and the bytes written, and traps on any mismatch.
    const module = await compile(
      policyWat({
        memory: '(memory (export "memory") 1)',
        extra: `
  (global $order (mut i32) (i32.const 0))
  (data $a "AAAA") (data $b "BBBB")
  (func $arg (param $id i32) (param $v i32) (result i32)
    (global.set $order (i32.add (i32.mul (global.get $order) (i32.const 10)) (local.get $id)))
    (local.get $v))
  (func $expect (param $got i32) (param $want i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (unreachable))))`,
        evaluateBody: `
    (memory.fill (call $arg (i32.const 1) (i32.const 4000)) (call $arg (i32.const 2) (i32.const 0x5a)) (call $arg (i32.const 3) (i32.const 4)))
    (call $expect (global.get $order) (i32.const 123))
    (call $expect (i32.load (i32.const 4000)) (i32.const 0x5a5a5a5a))
    (global.set $order (i32.const 0))
    (memory.copy (call $arg (i32.const 3) (i32.const 4002)) (call $arg (i32.const 1) (i32.const 4000)) (call $arg (i32.const 2) (i32.const 2)))
    (call $expect (global.get $order) (i32.const 312))
    (global.set $order (i32.const 0))
    (memory.init $b (call $arg (i32.const 2) (i32.const 5000)) (call $arg (i32.const 1) (i32.const 1)) (call $arg (i32.const 3) (i32.const 3)))
    (call $expect (global.get $order) (i32.const 213))
    (memory.init $a (i32.const 5003) (i32.const 0) (i32.const 1))
    (call $expect (i32.load (i32.const 5000)) (i32.const 0x41424242))
    (data.drop $a)
    ;; a dropped segment still refuses a non-empty init
    (if (i64.ne (local.get $bytes) (i64.const 0)) (then (memory.init $a (i32.const 0) (i32.const 0) (i32.const 1))))
    (i32.const 1024)`,
      }),
    );
    expect(evaluate(module, 0)).toMatchObject({ decision: 'allow' });
    const dropped = evaluate(module, 1);
    expect(dropped).toMatchObject({ decision: 'deny', errorKind: 'trap' });
    expect(dropped.errorDetail).toMatch(/out of bounds/);
  });
});

describe('bulk-memory loops through the Engine', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = new Engine({ workers: 1, linuxCapabilities: false });
    await engine.ready();
  });
  afterAll(async () => {
    await engine.close();
  });

  // Each iteration is a handful of expressions but moves megabytes: only size-proportional
  // fuel stops these within the default budget. The deadline is generous so that a timeout
  // would mean fuel failed to stop the loop.
  const LOOPS: Record<string, string> = {
    'memory.fill of 10 MiB': '(loop $l (memory.fill (i32.const 0) (i32.const 1) (i32.const 10485760)) (br $l))',
    'memory.copy of 5 MiB': '(loop $l (memory.copy (i32.const 0) (i32.const 5242880) (i32.const 5242880)) (br $l))',
  };
  for (const [name, loop] of Object.entries(LOOPS)) {
    it(`a loop of ${name} with the default fuel ends as fuel-exhausted, not timeout`, async () => {
      const wat = policyWat({
        memory: `(memory (export "memory") ${DEFAULT_LIMITS.memoryPages})`,
        evaluateBody: `${loop} (i32.const 1024)`,
      });
      const compiled = await engine.compile(await componentFromWat(wat));
      if (!compiled.ok) throw new Error(`rejected: ${compiled.kind}: ${compiled.message}`);
      const o = await engine.evaluate(compiled.policy.sha256, request(), simulated(), { deadlineMs: 60_000 });
      expect(o).toMatchObject({ decision: 'deny', reason: 'fuel-exhausted', errorKind: 'fuel-exhausted' });
    }, 90_000);
  }
});

describe('fuel for memory.grow', () => {
  const growing = policyWat({
    memory: '(memory (export "memory") 1 20)',
    evaluateBody: `(drop (memory.grow ${SIZE})) (i32.const 1024)`,
  });

  it('a grow that succeeds pays for its new pages like a fill of them (4096 per page)', async () => {
    const module = await compile(growing);
    const used = (pages: number): number => {
      const o = evaluate(module, pages);
      expect(o).toMatchObject({ decision: 'allow' });
      return o.fuelUsed;
    };
    expect(used(3) - used(0)).toBe(3 * 4096);
    expect(used(19) - used(0)).toBe(19 * 4096);
  });

  it('a grow the memory cap refuses costs nothing extra (and returns -1 to the guest)', async () => {
    const module = await compile(growing);
    const refused = evaluate(module, 1000);
    expect(refused).toMatchObject({ decision: 'allow' });
    expect(refused.fuelUsed).toBe(evaluate(module, 0).fuelUsed);
  });

  it('growing more than the fuel pays for ends as fuel-exhausted', async () => {
    const module = await compile(growing, { ...DEFAULT_LIMITS, fuel: 10_000 });
    expect(evaluate(module, 3, { ...DEFAULT_LIMITS, fuel: 10_000 })).toMatchObject({
      decision: 'deny',
      errorKind: 'fuel-exhausted',
    });
  });
});
