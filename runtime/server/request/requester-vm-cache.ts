// The requester's VM, resolved once per connection instead of once per request.
//
// SO_PEERCRED fixes who the peer is for the life of the connection; what costs is the /proc walk
// that places that pid in a VM (tens of µs). It is cached per connection (keyed by the peer
// object the server creates at accept) and re-done when the VM registry changes (generation),
// or after `ttlMs`, which bounds how long a process that left its VM (reparented, moved out of
// the cgroup) keeps the identity it had. Every request still checks that the connected process
// is alive (pidfd, ~1 µs), so a dead peer, or a pid now naming another process, never matches.
import type { RegisteredVm } from '../../identity/vm.ts';
import type { IdentityDeps, PeerCredentials } from '../deps.ts';
import type { VmRegistry } from '../state/vm-registry.ts';

export type RequesterVm =
  | { kind: 'vm'; vm: RegisteredVm }
  | { kind: 'unknown' }
  /** The process that connected has exited (its pid may name another process now). */
  | { kind: 'gone' };

interface Entry {
  generation: number;
  resolvedAt: number;
  /** What resolve() answers from this entry: one object per entry, not one per request. */
  answer: RequesterVm;
}

const UNKNOWN: RequesterVm = Object.freeze({ kind: 'unknown' });
const GONE: RequesterVm = Object.freeze({ kind: 'gone' });

export interface RequesterVmCacheStats {
  hits: number;
  misses: number;
}

export const DEFAULT_IDENTITY_TTL_MS = 1000;

export class RequesterVmCache {
  private readonly entries = new WeakMap<PeerCredentials, Entry>();
  readonly stats: RequesterVmCacheStats = { hits: 0, misses: 0 };

  constructor(
    private readonly identity: Pick<IdentityDeps, 'resolveRequesterVm' | 'peerStillConnected'>,
    private readonly registry: VmRegistry,
    private readonly ttlMs = DEFAULT_IDENTITY_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  resolve(peer: PeerCredentials): RequesterVm {
    if (!this.identity.peerStillConnected(peer)) return GONE;
    const generation = this.registry.generation;
    const now = this.now();
    const cached = this.entries.get(peer);
    if (cached !== undefined && cached.generation === generation && now - cached.resolvedAt < this.ttlMs) {
      this.stats.hits++;
      return cached.answer;
    }
    this.stats.misses++;
    const vm = this.identity.resolveRequesterVm(peer.pid, this.registry.vms as RegisteredVm[]);
    // The walk read /proc by pid number: it described our peer only if the peer is still alive.
    if (!this.identity.peerStillConnected(peer)) return GONE;
    const answer: RequesterVm = vm === null ? UNKNOWN : Object.freeze({ kind: 'vm', vm });
    this.entries.set(peer, { generation, resolvedAt: now, answer });
    return answer;
  }
}
