// The daemon's decision on what the compile process returned (accept-compiled-core.ts). There is
// deliberately no way to make the real compile process lie, so the answer here is a real one (the
// compile step's own output, shaped as it crosses the wire), mutated as a taken-over process could.
import { afterAll, describe, expect, it } from 'vitest';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { acceptCompiledCore } from '../../../runtime/engine/compile/accept-compiled-core.ts';
import { CompileProcess } from '../../../runtime/engine/compile/compile-process.ts';
import type { CompileResultOnWire } from '../../../runtime/engine/compile/compile-protocol.ts';
import { compilePolicyWithCore } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS, type EngineLimits } from '../../../runtime/engine/limits.ts';
import { verifyCoreOffThread } from '../../../runtime/engine/verify/verify-off-thread.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { bodies, OP, rewriteBodies, withoutInstructions, withSection } from './support/core-surgery.ts';

type Answer = Extract<CompileResultOnWire, { ok: true }>;

const GUEST = policyWat({
  evaluateBody: `(local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 10))))
    (i32.const 1024)`,
  extra: '(table 300 funcref)',
});

/** What an honest compile process sends for `wat` (compile-main.ts does the same). */
async function honestAnswer(wat = GUEST, limits: EngineLimits = DEFAULT_LIMITS): Promise<Answer> {
  const { result, core } = await compilePolicyWithCore(await componentFromWat(wat), limits);
  if (!result.ok || core === undefined) throw new Error('not compiled');
  const { module: _module, ...policy } = result.policy;
  return { ok: true, policy, core };
}

const compilers: CompileProcess[] = [];
afterAll(async () => {
  await Promise.all(compilers.map((c) => c.close()));
});

describe("the daemon's decision on a compile process's answer", () => {
  it('accepts an honest answer: the module compiled, the instantiation cost from the module itself', async () => {
    const answer = await honestAnswer();
    const accepted = await acceptCompiledCore(answer, DEFAULT_LIMITS);
    expect(accepted.broken).toBe(false);
    if (!accepted.result.ok) throw new Error(accepted.result.message);
    const policy: CompiledPolicy = accepted.result.policy;
    expect(policy.module).toBeInstanceOf(WebAssembly.Module);
    // Counted on the module that runs: the two metering globals included; the trial timed here.
    expect(policy.instantiation).toEqual({ ...answer.policy.instantiation, globals: 2, trialUs: expect.any(Number) });
    expect(policy.instantiation?.tableEntries).toBe(300);
  });

  it('refuses a module whose loop lost its charge, though V8 compiles it, and calls the process broken', async () => {
    const answer = await honestAnswer();
    const core = rewriteBodies(answer.core, (b) => {
      const loop = b.instructions.findIndex((i) => i.op === OP.loop);
      return loop < 0 ? undefined : withoutInstructions(b, loop + 1, 10);
    });
    expect(bodies(core).some((b) => b.instructions.some((i) => i.op === OP.loop))).toBe(true);
    expect(WebAssembly.validate(core)).toBe(true);
    const accepted = await acceptCompiledCore({ ...answer, core }, DEFAULT_LIMITS);
    expect(accepted.broken).toBe(true);
    expect(accepted.result).toMatchObject({
      ok: false,
      kind: 'invalid-module',
      message: expect.stringMatching(
        /^the compile process returned a module that is not metered: the loop at function \d+, byte \d+ does not begin with a charge$/,
      ),
    });
  });

  it('refuses host functions the module does not import, and takes the sizes from the module, not the answer', async () => {
    const answer = await honestAnswer();
    const lying = await acceptCompiledCore(
      { ...answer, policy: { ...answer.policy, hostFunctions: ['log'] } },
      DEFAULT_LIMITS,
    );
    expect(lying.broken).toBe(true);
    expect(lying.result).toMatchObject({
      ok: false,
      message: expect.stringMatching(/returned host functions \[log\]/),
    });
    // A smaller table than the module's, so that instances would be made on the main thread.
    const small = { ...answer.policy.instantiation!, tableEntries: 0 };
    const accepted = await acceptCompiledCore(
      { ...answer, policy: { ...answer.policy, instantiation: small } },
      DEFAULT_LIMITS,
    );
    expect(accepted.result.ok && accepted.result.policy.instantiation?.tableEntries).toBe(300);
  });

  it('times the trial instantiation itself: a claim of 1 µs for a costly module is neither used nor lets it past the limit', async () => {
    // 200,000 table and element entries: tens of milliseconds to instantiate (~20 ns a table
    // entry, 100-200 ns an element entry), far over the 1 ms limit below. Compiled honestly under
    // upload limits that let it through, then answered as a taken-over process would: 1 µs.
    const entries = 200_000;
    const costly = policyWat({
      extra: `(func $nop) (table ${entries} funcref) (elem (i32.const 0) ${'$nop '.repeat(entries)})`,
    });
    const roomy: EngineLimits = {
      ...DEFAULT_LIMITS,
      maxTableEntries: entries,
      maxElementEntries: entries,
      maxInstantiateMs: 60_000,
    };
    const answer = await honestAnswer(costly, roomy);
    const lying: Answer = {
      ...answer,
      policy: { ...answer.policy, instantiation: { ...answer.policy.instantiation!, trialUs: 1 } },
    };
    const refused = await acceptCompiledCore(lying, { ...roomy, maxInstantiateMs: 1 });
    // Refused as the policy's own fault, in the message the compile process uses; the process is not
    // called broken (a trial's time depends on the machine's load too).
    expect(refused.broken).toBe(false);
    expect(refused.result).toMatchObject({
      ok: false,
      kind: 'invalid-module',
      message: expect.stringMatching(
        /^instantiating the policy took \d+\.\d ms in a trial at upload; the limit is 1 ms \(limits\.maxInstantiateMs\)$/,
      ),
    });
    // Under a limit it meets, accepted with the daemon's own measure, not the claim.
    const accepted = await acceptCompiledCore(lying, roomy);
    if (!accepted.result.ok) throw new Error(accepted.result.message);
    expect(accepted.result.policy.instantiation?.trialUs).not.toBe(1);
    expect(accepted.result.policy.instantiation?.elementEntries).toBe(entries);
  });

  it('instantiates the module itself: one that cannot be instantiated is refused, whatever the process says', async () => {
    // A one-entry element segment in a one-entry table, then the table cut to 0 entries: it
    // verifies and compiles, and only instantiating it shows that the segment is out of bounds.
    const answer = await honestAnswer(policyWat({ extra: '(func $nop) (table 1 funcref) (elem (i32.const 0) $nop)' }));
    const core = withSection(answer.core, 4, Uint8Array.of(1, 0x70, 0x00, 0));
    expect(WebAssembly.validate(core)).toBe(true);
    const accepted = await acceptCompiledCore({ ...answer, core }, DEFAULT_LIMITS);
    expect(accepted.result).toMatchObject({
      ok: false,
      kind: 'invalid-module',
      message: expect.stringMatching(/^the policy cannot be instantiated: /),
    });
  });

  it('a normal upload through the real compile process passes the verifier', async () => {
    const compiler = new CompileProcess();
    compilers.push(compiler);
    const r = await compiler.compile(await componentFromWat(GUEST), DEFAULT_LIMITS);
    expect(r).toMatchObject({ ok: true });
    expect(compiler.refusedOutputs).toBe(0);
  });
});

describe('the verifier off the main thread', () => {
  it('refuses when it runs past its time', async () => {
    const answer = await honestAnswer();
    // No worker starts and reads a module within a millisecond; the refusal does not wait for it.
    const outcome = await verifyCoreOffThread(answer.core, DEFAULT_LIMITS, { timeoutMs: 1, maxHeapMb: 256 });
    expect(outcome).toEqual({ ok: false, stage: 'worker', message: 'verifying and trying it took longer than 1 ms' });
    expect(await verifyCoreOffThread(answer.core, DEFAULT_LIMITS)).toMatchObject({ ok: true });
  });
});
