// What the server needs from the identity module, injected so that only the daemon's wiring
// knows where it lives (and unit tests of the server can stay on real sockets regardless).
import type net from 'node:net';
import type { AnchorRefusal } from '../identity/anchor-sanity.ts';
import type { PeerCredentials } from '../os/peer-credentials.ts';
import type { Requester, TargetTranslation } from '../identity/target-translation.ts';
import type { RegisteredVm } from '../identity/vm.ts';

export type { PeerCredentials };

export interface IdentityDeps {
  /** SO_PEERCRED of an accepted Unix socket connection. Throws if unavailable. */
  readPeerCredentials(socket: net.Socket): PeerCredentials;
  /** The registered VM the kernel-verified pid belongs to, or null. */
  resolveRequesterVm(pid: number, vms: RegisteredVm[]): RegisteredVm | null;
  validateVmRegistration(input: unknown): { ok: true; vm: RegisteredVm } | { ok: false; error: string };
  /** Why a validated VM may not be registered beside `registered` (its anchor covers host processes or another VM), or null. */
  checkAnchor(vm: RegisteredVm, registered: readonly RegisteredVm[]): AnchorRefusal | null;
  /** At decision time: is the process that connected still the one holding its pid? Required:
   * a request path without it would act for whichever process holds the pid now. */
  peerStillConnected(peer: PeerCredentials): boolean;
  /**
   * The daemon's pid for the target a requester of `vm` named in its own pid namespace. Absent:
   * every requester is taken to share the daemon's namespace. A promise only when it has to
   * search (and may throw or reject: the request is then denied).
   */
  translateTargetPid?(
    requester: Requester,
    vm: RegisteredVm,
    targetPid: number,
  ): TargetTranslation | Promise<TargetTranslation>;
}
