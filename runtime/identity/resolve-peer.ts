// The daemon's request-path identity step: which VM the connected peer is in, valid only if the
// peer that connected is still the process behind its pid after the lookup.
import type { RegisteredVm } from './vm.ts';
import { peerStillConnected, type PeerCredentials } from './peer-credentials.ts';
import { resolveRequester, type RequesterResolution } from './resolve-requester.ts';

export type PeerResolution =
  | RequesterResolution
  /** The peer exited, or its pid names another process now: deny, never evaluate. */
  | { kind: 'gone' };

export function resolvePeerVm(credentials: PeerCredentials, vms: readonly RegisteredVm[]): PeerResolution {
  if (!peerStillConnected(credentials)) return { kind: 'gone' };
  const resolution = resolveRequester(credentials.pid, vms);
  // The /proc walk read by pid number: it described our peer only if the peer is still alive.
  return peerStillConnected(credentials) ? resolution : { kind: 'gone' };
}
