// The verifier of the instrumented core module (runtime/engine/verify/): what the daemon runs on
// every module the compile process returns. Real compiled guests pass; every way a taken-over
// compile process could return an unmetered module that V8 still compiles is refused, with a
// message that names what and where.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { packagePath } from '../../../runtime/bootstrap/package-root.ts';
import { compilePolicyWithCore } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS, type EngineLimits } from '../../../runtime/engine/limits.ts';
import { concat } from '../../../runtime/engine/instrument/core-sections.ts';
import { NotMetered, verifyInstrumentedCore } from '../../../runtime/engine/verify/verify-core.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { loadAssemblyScriptExamples } from '../run/fixtures/examples.ts';
import {
  type Body,
  bodies,
  OP,
  replacingInstruction,
  rewriteBodies,
  sectionPayload,
  sleb,
  u32,
  withoutInstructions,
  withSection,
} from './support/core-surgery.ts';

async function instrumented(component: Uint8Array, limits: EngineLimits = DEFAULT_LIMITS) {
  const { result, core } = await compilePolicyWithCore(component, limits);
  if (!result.ok || core === undefined) throw new Error(`not compiled: ${JSON.stringify(result)}`);
  return { core, policy: result.policy };
}

function refusal(core: Uint8Array, limits: EngineLimits = DEFAULT_LIMITS): string {
  expect(WebAssembly.validate(core)).toBe(true); // V8 would compile it: only the verifier stands in the way
  try {
    verifyInstrumentedCore(core, limits);
  } catch (err) {
    if (err instanceof NotMetered) return err.message;
    throw err;
  }
  throw new Error('the verifier accepted it');
}

/**
 * A guest with a loop, a helper its caller pays for, a memory.fill, a memory.grow and a start
 * function (deferred by the instrumenter into a prelude of every export).
 */
const BASE = policyWat({
  evaluateBody: `(local $i i32)
    (loop $l
      (local.set $i (call $inc (local.get $i)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 10))))
    (memory.fill (i32.const 4096) (i32.const 0) (local.get $i))
    (drop (memory.grow (i32.const 0)))
    (i32.const 1024)`,
  extra: `(func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
    (global $ready (mut i32) (i32.const 0))
    (func $init (global.set $ready (i32.const 1)))
    (start $init)`,
});

const has = (b: Body, op: number): boolean => b.instructions.some((i) => i.op === op);
const CHARGE = 10;
/** An exported function's charge comes after the deferred start's prelude. */
const PRELUDE = 7;
/** cabi_post_evaluate: an empty body, so only the prelude, its charge and end. */
const isPost = (b: Body): boolean =>
  b.instructions.length === PRELUDE + CHARGE + 1 && b.instructions[1]!.op === OP.i32Eqz;
const isEvaluate = (b: Body): boolean => has(b, OP.loop);

describe('the verifier of the instrumented core', () => {
  it('passes every guest example (AssemblyScript, Rust, C) as the compile step instruments it', async () => {
    const components = (await loadAssemblyScriptExamples()).map((e) => e.component);
    for (const lang of ['rust', 'c'])
      for (const name of ['memlock-cap', 'vfio-only'])
        components.push(new Uint8Array(readFileSync(packagePath('guest-examples', lang, 'prebuilt', `${name}.wasm`))));
    expect(components).toHaveLength(6);
    for (const component of components) {
      const { core, policy } = await instrumented(component);
      const verified = verifyInstrumentedCore(core, DEFAULT_LIMITS);
      expect(verified.hostFunctions).toEqual(policy.hostFunctions);
      expect(verified.shape.globals).toBeGreaterThanOrEqual(2);
    }
  });

  it('refuses the raw, uninstrumented core module of a real guest, and the instrumented one without its charges', async () => {
    const [example] = await loadAssemblyScriptExamples();
    expect(refusal(example!.core)).toBe('it declares a memory of its own (the instrumenter imports it)');
    const { core } = await instrumented(example!.component);
    // Every charge taken out of the guest's code (the metering helpers left as they are).
    const unmetered = rewriteBodies(core, (b) => {
      if ([OP.memoryGrow, OP.memoryFill, OP.memoryCopy, OP.memoryInit].some((op) => has(b, op))) return undefined;
      const kept = b.instructions.map((_, k) => k);
      for (let k = b.instructions.length - CHARGE; k >= 0; k--)
        if (b.instructions[k + 2]!.op === OP.i64Sub && b.instructions[k + 3]!.op === OP.globalSet)
          kept.splice(k, CHARGE);
      return concat(kept.map((k) => b.code.subarray(b.instructions[k]!.start, b.instructions[k]!.end)));
    });
    expect(bodies(unmetered).flatMap((b) => b.instructions).length).toBeLessThan(
      bodies(core).flatMap((b) => b.instructions).length - 5 * CHARGE,
    );
    expect(refusal(unmetered)).toMatch(/^the loop at function \d+, byte \d+ does not begin with a charge$/);
  });

  it('passes the base guest the attacks below start from', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    expect(() => verifyInstrumentedCore(core, DEFAULT_LIMITS)).not.toThrow();
    expect(bodies(core).filter(isPost)).toHaveLength(1);
  });

  it('refuses a loop whose charge was removed', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const mutated = rewriteBodies(core, (b) => {
      const loop = b.instructions.findIndex((i) => i.op === OP.loop);
      return loop < 0 ? undefined : withoutInstructions(b, loop + 1, CHARGE);
    });
    expect(refusal(mutated)).toMatch(/^the loop at function \d+, byte \d+ does not begin with a charge$/);
  });

  it('refuses a charge whose constant is too small for its region', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const mutated = rewriteBodies(core, (b) =>
      isEvaluate(b) ? replacingInstruction(b, PRELUDE + 1, [OP.i64Const, ...sleb(1)]) : undefined,
    );
    expect(refusal(mutated)).toMatch(
      /^the charge at function \d+, byte \d+ is 1; its region runs up to \d+ instructions, which needs at least \d+$/,
    );
  });

  it('refuses a negative charge (it would give fuel) and a charge made into a refill', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const negative = rewriteBodies(core, (b) => {
      const loop = b.instructions.findIndex((i) => i.op === OP.loop);
      return loop < 0 ? undefined : replacingInstruction(b, loop + 2, [OP.i64Const, ...sleb(-1000)]);
    });
    expect(refusal(negative)).toMatch(/^the charge at function \d+, byte \d+ is -1000, not positive$/);
    // A refill right after evaluate's charge: fuel += 1,000,000.
    const refill = rewriteBodies(core, (b) => {
      if (!isEvaluate(b)) return undefined;
      const fuel = u32(b.instructions[PRELUDE]!.imm);
      const after = b.instructions[PRELUDE + CHARGE]!.start;
      const add = [0x23, ...fuel, OP.i64Const, ...sleb(1_000_000), OP.i64Add, OP.globalSet, ...fuel];
      return concat([b.code.subarray(0, after), Uint8Array.from(add), b.code.subarray(after)]);
    });
    expect(refusal(refill)).toMatch(/^function \d+, byte \d+ sets the fuel outside a charge$/);
  });

  it('refuses a recursive helper without a charge', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const evaluate = bodies(core).find(isEvaluate)!;
    const loop = evaluate.instructions.findIndex((i) => i.op === OP.loop);
    const inc = evaluate.instructions.slice(loop).find((i) => i.op === OP.call)!.imm; // the helper the loop calls
    expect(bodies(core).find((b) => b.fn === inc)!.instructions[0]!.op).toBe(OP.localGet); // caller-charged
    const mutated = rewriteBodies(core, (b) =>
      b.fn === inc ? Uint8Array.from([OP.localGet, 0, OP.call, ...u32(inc), OP.end]) : undefined,
    );
    expect(refusal(mutated)).toBe(
      `function ${inc} calls function ${inc} recursively, and neither begins with a charge`,
    );
  });

  it('refuses an exported function without a charge', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const post = bodies(core).find(isPost)!;
    const mutated = rewriteBodies(core, (b) =>
      b.fn === post.fn ? withoutInstructions(b, 0, PRELUDE + CHARGE) : undefined,
    );
    expect(refusal(mutated)).toBe(
      `function ${post.fn} is exported as "cabi_post_evaluate" but does not begin with a charge`,
    );
  });

  it('refuses a memory.fill without its size charge, and a memory.grow outside the grow helper', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const fill = bodies(core).find((b) => has(b, OP.memoryFill))!;
    expect(fill.instructions).toHaveLength(18); // the helper: its size charge (13), then the operation
    const mutated = rewriteBodies(core, (b) => (b.fn === fill.fn ? withoutInstructions(b, 0, 13) : undefined));
    expect(refusal(mutated)).toMatch(
      /^function \d+, byte \d+ has a memory.fill \(unmetered\) outside the instrumenter's metering helper$/,
    );
    const grow = rewriteBodies(core, (b) => {
      if (!isEvaluate(b)) return undefined;
      const call = b.instructions.findLastIndex((i) => i.op === OP.call); // the grow helper's call
      return replacingInstruction(b, call, [OP.memoryGrow, 0]);
    });
    expect(refusal(grow)).toMatch(
      /^function \d+, byte \d+ has a memory.grow outside the instrumenter's metering helper$/,
    );
  });

  it('refuses an extra import, and a host function from outside the contract', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const imports = sectionPayload(core, 2);
    const enc = new TextEncoder();
    const name = (x: string): Uint8Array => concat([Uint8Array.from(u32(x.length)), enc.encode(x)]);
    // One more entry after the last (the count is one byte here): a table, so no index moves.
    const table = concat([
      Uint8Array.of(imports[0]! + 1),
      imports.subarray(1),
      name('env'),
      name('spy'),
      Uint8Array.of(1, 0x70, 0, 0),
    ]);
    expect(refusal(withSection(core, 2, table))).toBe(
      'it has an extra import "env"."spy" (not a function nor the memory)',
    );
    // The first host function, imported from another module than the contract's.
    const from = enc.encode('capgate:policy/host@1.0.0');
    const at = imports.findIndex((_, i) => from.every((c, j) => imports[i + j] === c));
    const renamed = concat([imports.subarray(0, at - 1), name('env'), imports.subarray(at + from.length)]);
    expect(refusal(withSection(core, 2, renamed))).toMatch(
      /^it has an extra import "env"\."(log|set-memlock|query-vm-identity)"$/,
    );
  });

  it("refuses a table bigger than the limits, and a memory above the job's", async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const entries = DEFAULT_LIMITS.maxTableEntries + 1;
    const table = Uint8Array.from([1, 0x70, 0x00, ...u32(entries)]);
    expect(refusal(withSection(core, 4, table))).toBe(
      `the core module declares a table of ${entries} entries; the limit is ${DEFAULT_LIMITS.maxTableEntries} (limits.maxTableEntries)`,
    );
    expect(refusal(core, { ...DEFAULT_LIMITS, memoryPages: 1 })).toMatch(
      /^its import "capgate:engine"\."memory" has limits 1\.\.\d+ pages; the job's limit is 1 pages$/,
    );
  });

  it('refuses a start section, and an opcode outside the allowed features', async () => {
    const { core } = await instrumented(await componentFromWat(BASE));
    const evaluate = bodies(core).find(isEvaluate)!;
    const init = evaluate.instructions[PRELUDE - 2]!.imm; // the deferred start function the prelude calls
    expect(refusal(withSection(core, 8, Uint8Array.from(u32(init))))).toBe(
      'it has a start section (the instrumenter defers the start function)',
    );
    // A tail call (return_call) in place of the loop's call: not a feature the instrumenter takes.
    const tail = rewriteBodies(core, (b) => {
      if (!isEvaluate(b)) return undefined;
      const loop = b.instructions.findIndex((i) => i.op === OP.loop);
      const call = b.instructions.findIndex((i, k) => k > loop && i.op === OP.call);
      return replacingInstruction(b, call, [0x12, ...u32(b.instructions[call]!.imm)]);
    });
    expect(() => verifyInstrumentedCore(tail, DEFAULT_LIMITS)).toThrow(/^it uses opcode 0x12/);
  });

  it('computes helper totals with memoisation: a doubling call chain 60 deep verifies at once', async () => {
    const chain = Array.from(
      { length: 60 },
      (_, i) => `(func $h${i + 1} (param i32) (result i32) (call $h${i} (call $h${i} (local.get 0))))`,
    ).join('\n');
    const wat = policyWat({
      evaluateBody: '(drop (call $h60 (local.get $op))) (i32.const 1024)',
      extra: `(func $h0 (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))\n${chain}`,
    });
    const { core } = await instrumented(await componentFromWat(wat));
    expect(() => verifyInstrumentedCore(core, DEFAULT_LIMITS)).not.toThrow();
  });
});
