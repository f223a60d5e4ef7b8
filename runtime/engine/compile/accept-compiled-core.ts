// The daemon's decision on what the compile process returned. That process may be running an
// attacker's code (it decodes untrusted bytes), so its instrumented core module is verified
// (../verify/verify-core.ts: every loop and entry charged, charges large enough, no refill, the
// imports and limits the engine expects) off the main thread before WebAssembly.compile: a core
// without fuel checks would hold whichever thread runs it (the main thread too, for a speculative
// run) for ever. What it says of the module is replaced by what the module shows: its host
// functions must be its imports, and its instantiation cost is recomputed from its sections.
// A module that fails is refused and the process is treated as broken (the caller replaces it).
import type { CompileResult } from '../api.ts';
import { instantiationCost } from '../instantiation-cost.ts';
import type { EngineLimits } from '../limits.ts';
import { verifyCoreOffThread } from '../verify/verify-off-thread.ts';
import type { CompileResultOnWire } from './compile-protocol.ts';

export interface Acceptance {
  result: CompileResult;
  /** The process returned what an honest one would not: it must not compile anything else. */
  broken: boolean;
}

const NOT_METERED = 'the compile process returned a module that is not metered';

function refusal(message: string, broken: boolean): Acceptance {
  return { result: { ok: false, kind: 'invalid-module', message: message.slice(0, 1200) }, broken };
}

export async function acceptCompiledCore(
  answer: Extract<CompileResultOnWire, { ok: true }>,
  limits: EngineLimits,
): Promise<Acceptance> {
  const outcome = await verifyCoreOffThread(answer.core, limits);
  if (!outcome.ok) return refusal(`${NOT_METERED}: ${outcome.message}`, true);
  const { verified } = outcome;
  if (verified.hostFunctions.join('\n') !== answer.policy.hostFunctions.join('\n'))
    return refusal(
      `the compile process returned host functions [${answer.policy.hostFunctions.join(', ')}] for a module that imports [${verified.hostFunctions.join(', ')}]`,
      true,
    );
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(answer.core);
  } catch (err) {
    return refusal(
      `the compiled policy does not compile here (engine bug): ${err instanceof Error ? err.message : String(err)}`,
      true,
    );
  }
  // The trial's time is the process's word; the sizes are the module's. Without a trial the
  // cost stays unknown (never instantiated on the main thread).
  const { instantiation: claimed, ...policy } = answer.policy;
  const instantiation = claimed !== undefined ? instantiationCost(verified.shape, claimed.trialUs) : undefined;
  return {
    result: {
      ok: true,
      policy: { ...policy, limits: { ...limits }, module, ...(instantiation ? { instantiation } : {}) },
    },
    broken: false,
  };
}
