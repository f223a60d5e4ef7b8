// A policy service for tests that drive the decision pipeline directly: one compiled policy bound
// to set-memlock, loaded and never released (what PolicyService does around it is tested apart).
import type { PolicyService } from '../../runtime/server/policies/policy-service.ts';

export function boundPolicyService(policy: string, sha256: string): PolicyService {
  const binding = {
    operation: 'set-memlock' as const,
    policy,
    revision: 1,
    sha256,
    boundAt: new Date().toISOString(),
  };
  return {
    bindings: { get: () => binding },
    acquire: () => undefined,
    release: () => undefined,
    whenLoaded: () => undefined,
  } as unknown as PolicyService;
}
