// An optional per-evaluation cap on capability calls (EngineLimits.maxCapabilityCalls), for
// callers that do not enforce it themselves. Beyond it: set-memlock -> quota-exceeded,
// query-vm-identity -> none. Works over any Capabilities (real or simulated).
import type { Capabilities } from '../capabilities.ts';

export function withCallQuota(inner: Capabilities, maxCalls: number): Capabilities {
  let used = 0;
  const take = (): boolean => used++ < maxCalls;
  return {
    setMemlock(pid, bytes) {
      if (!take()) return { ok: false, error: 'quota-exceeded', detail: `more than ${maxCalls} capability calls in one evaluation` };
      return inner.setMemlock(pid, bytes);
    },
    queryVmIdentity(pid) {
      return take() ? inner.queryVmIdentity(pid) : null;
    },
    release() {
      inner.release?.();
    },
  };
}
