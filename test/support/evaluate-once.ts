// One decision on a fresh instance of `module`, on the calling thread, through the path the
// engine's workers take (InstanceFactory.prepare, then evaluatePrepared): tests of the ABI and
// of the limits exercise the daemon's own code, not a parallel one.
import type { PolicyRequest } from '../../runtime/contract/types.ts';
import type { Capabilities } from '../../runtime/capabilities/capabilities.ts';
import { evaluatePrepared } from '../../runtime/engine/evaluate-instance.ts';
import { InstanceFactory } from '../../runtime/engine/instance-factory.ts';
import type { EngineLimits } from '../../runtime/engine/limits.ts';
import type { Outcome } from '../../runtime/engine/outcome.ts';

export function evaluateOnce(
  module: WebAssembly.Module,
  request: PolicyRequest,
  capabilities: Capabilities,
  limits: EngineLimits,
): Outcome {
  return evaluatePrepared(new InstanceFactory(module).prepare(), request, capabilities, limits);
}
