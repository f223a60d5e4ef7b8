// The daemon's decision on what the compile process returned (accept-compiled-core.ts). There is
// deliberately no way to make the real compile process lie, so the answer here is a real one (the
// compile step's own output, shaped as it crosses the wire), mutated as a taken-over process could.
import { afterAll, describe, expect, it } from 'vitest';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { acceptCompiledCore } from '../../../runtime/engine/compile/accept-compiled-core.ts';
import { CompileProcess } from '../../../runtime/engine/compile/compile-process.ts';
import type { CompileResultOnWire } from '../../../runtime/engine/compile/compile-protocol.ts';
import { compilePolicyWithCore } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { verifyCoreOffThread } from '../../../runtime/engine/verify/verify-off-thread.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { bodies, OP, rewriteBodies, withoutInstructions } from './support/core-surgery.ts';

type Answer = Extract<CompileResultOnWire, { ok: true }>;

const GUEST = policyWat({
  evaluateBody: `(local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 10))))
    (i32.const 1024)`,
  extra: '(table 300 funcref)',
});

/** What an honest compile process sends for GUEST (compile-main.ts does the same). */
async function honestAnswer(): Promise<Answer> {
  const { result, core } = await compilePolicyWithCore(await componentFromWat(GUEST), DEFAULT_LIMITS);
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
    // Counted on the module that runs: the two metering globals included.
    expect(policy.instantiation).toEqual({ ...answer.policy.instantiation, globals: 2 });
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
    expect(outcome).toEqual({ ok: false, message: 'verifying it took longer than 1 ms' });
    expect(await verifyCoreOffThread(answer.core, DEFAULT_LIMITS)).toMatchObject({ ok: true });
  });
});
