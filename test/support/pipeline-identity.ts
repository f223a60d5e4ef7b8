// The identity a test gives the decision pipeline when it drives it directly: requesters are
// placed in VMs by `resolveRequesterVm`, and every peer is still connected. What the pipeline
// never calls throws or refuses, so a test that reaches it fails.
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import type { IdentityDeps } from '../../runtime/server/deps.ts';

export function pipelineIdentity(resolveRequesterVm: IdentityDeps['resolveRequesterVm']): IdentityDeps {
  return {
    readPeerCredentials: () => {
      throw new Error('the pipeline never reads peer credentials: the server does');
    },
    resolveRequesterVm,
    validateVmRegistration: () => ({ ok: false, error: 'unused' }),
    checkAnchor: () => null,
    peerStillConnected: () => true,
  };
}

/** Every requester is in `vm` (null: in no VM). */
export const everyRequesterIn = (vm: RegisteredVm | null): IdentityDeps => pipelineIdentity(() => vm);
