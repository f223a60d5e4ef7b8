// Turns whatever stopped an evaluation into an error kind. Order matters: a fault the host
// recorded wins (the guest may have caught the throw), then the instrumentation's globals
// (a refused memory.grow: the root cause even when the guest then spun until its fuel ran out;
// then fuel below zero), then the JS error's own type.
import { GuestFault } from './abi/guest-fault.ts';
import type { InstrumentationView } from './instrumentation-globals.ts';
import type { ErrorKind, Outcome } from './outcome.ts';
import { trapSite } from './trap-site.ts';

export interface Failure {
  kind: ErrorKind;
  detail: string;
}

/** How a stack overflow's detail starts: its depth depends on the thread's stack, not on the policy. */
export const STACK_OVERFLOW = 'stack overflow';

export function isStackOverflow(outcome: Outcome): boolean {
  return outcome.errorKind === 'trap' && outcome.errorDetail?.startsWith(STACK_OVERFLOW) === true;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function classifyFailure(
  err: unknown,
  recorded: GuestFault | undefined,
  globals: InstrumentationView | undefined,
  phase: string,
): Failure {
  if (recorded !== undefined) return { kind: recorded.kind, detail: recorded.message };
  if (err instanceof GuestFault) return { kind: err.kind, detail: err.message };
  if (globals?.oom() === true)
    return {
      kind: 'memory-limit',
      detail: `memory.grow refused by the memory cap, then ${phase} failed: ${message(err)}${trapSite(err)}`,
    };
  // NaN (no fuel global) is not below zero.
  if ((globals?.fuelLeft() ?? Number.NaN) < 0)
    return { kind: 'fuel-exhausted', detail: `fuel budget used up in ${phase}` };
  if (err instanceof RangeError) {
    if (/call stack/i.test(err.message))
      return { kind: 'trap', detail: `${STACK_OVERFLOW} in ${phase}${trapSite(err)}` };
    if (/memory/i.test(err.message)) return { kind: 'memory-limit', detail: `${phase}: ${err.message}` };
    return { kind: 'trap', detail: `${phase}: ${err.message}${trapSite(err)}` };
  }
  // The function that trapped, by name: the first thing an author needs (not done for fuel, which
  // the speculative run exhausts on purpose, on the daemon's thread).
  if (err instanceof WebAssembly.RuntimeError)
    return { kind: 'trap', detail: `${phase}: ${err.message}${trapSite(err)}` };
  if (err instanceof WebAssembly.LinkError || err instanceof WebAssembly.CompileError) {
    return { kind: 'invalid-module', detail: `${phase}: ${err.message}` };
  }
  return { kind: 'host-error', detail: `${phase}: ${message(err)}` };
}
