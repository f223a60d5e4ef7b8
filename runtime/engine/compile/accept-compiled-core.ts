// The daemon's decision on what the compile process returned. That process may be running an
// attacker's code (it decodes untrusted bytes), so nothing it says of the module is taken on its
// word. Off the main thread, in the verifier's worker (../verify/): the instrumented core module
// is verified (every loop and entry charged, charges large enough, no refill, the imports and
// limits the engine expects: a core without fuel checks would hold whichever thread runs it, the
// main thread too, for ever), compiled, and instantiated in a timed trial. Its host functions
// must be its imports; its instantiation cost is what its sections declare and what the
// daemon's own trial took, whatever the process measured (a process that claims 1 µs would have
// a costly policy instantiated on the main thread). A module that fails the verifier, or does
// not compile, is refused and the process is treated as broken (the caller replaces it); one
// whose trial takes the limit or more is refused as the compile process would refuse it.
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
const UNCHECKED = 'the compile process returned a module that could not be checked';

function refusal(message: string, broken: boolean): Acceptance {
  return { result: { ok: false, kind: 'invalid-module', message: message.slice(0, 1200) }, broken };
}

export async function acceptCompiledCore(
  answer: Extract<CompileResultOnWire, { ok: true }>,
  limits: EngineLimits,
): Promise<Acceptance> {
  const outcome = await verifyCoreOffThread(answer.core, limits);
  if (!outcome.ok) {
    if (outcome.stage === 'trial') return refusal(outcome.message, false);
    if (outcome.stage === 'compile') return refusal(outcome.message, true);
    return refusal(`${outcome.stage === 'verify' ? NOT_METERED : UNCHECKED}: ${outcome.message}`, true);
  }
  const { verified, module, trialUs } = outcome;
  if (verified.hostFunctions.join('\n') !== answer.policy.hostFunctions.join('\n'))
    return refusal(
      `the compile process returned host functions [${answer.policy.hostFunctions.join(', ')}] for a module that imports [${verified.hostFunctions.join(', ')}]`,
      true,
    );
  // The process's own measure (answer.policy.instantiation) is dropped: the sizes are the
  // module's, the trial's time the daemon's.
  const { instantiation: _claimed, ...policy } = answer.policy;
  return {
    result: {
      ok: true,
      policy: { ...policy, limits: { ...limits }, module, instantiation: instantiationCost(verified.shape, trialUs) },
    },
    broken: false,
  };
}
