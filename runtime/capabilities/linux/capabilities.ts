// The real Linux Capabilities for one evaluation, scoped to the requester's registered VM.
// Created inside the engine's worker per evaluation (from CapabilitySpec { kind: 'linux' }).
import type { RegisteredVm } from '../../identity/vm.ts';
import type { Capabilities, SetMemlockResult } from '../capabilities.ts';
import type { PinnedTarget } from './checked-target.ts';
import { CheckedTargets, MAX_KEPT_TARGETS } from './checked-targets.ts';
import { queryVmIdentityChecked } from './query-vm-identity.ts';
import { recentMembers, type RecentMembers } from './recent-members.ts';
import { setMemlockChecked } from './set-memlock.ts';
import type { EffectSink } from '../../effects/effect-sink.ts';
import type { VmIdentity } from '../../contract/types.ts';

export interface LinuxCapabilitiesOptions {
  /** pidfds kept across calls until release() (default MAX_KEPT_TARGETS; 0 keeps none). */
  maxKeptTargets?: number;
  /** Reuse this thread's recent member verdicts for this long (recent-members.ts); 0 or absent: never. */
  recentMembersMs?: number;
  /** The request's target as the daemon translated it (checked-target.ts PinnedTarget). */
  pinned?: PinnedTarget;
  /** Where the calls are recorded, effects before they act (effects/effect-sink.ts). */
  effects?: EffectSink;
}

export function createLinuxCapabilities(scope: RegisteredVm, options: LinuxCapabilitiesOptions = {}): Capabilities {
  return new LinuxCapabilities(scope, options);
}

/** One object per evaluation, its methods on the prototype (every decision makes one). */
class LinuxCapabilities implements Capabilities {
  readonly #targets: CheckedTargets;
  readonly #effects: EffectSink | undefined;

  constructor(scope: RegisteredVm, options: LinuxCapabilitiesOptions) {
    // Checked once per pid and evaluation: query-vm-identity then set-memlock walks /proc once.
    const recentMs = options.recentMembersMs ?? 0;
    this.#targets = new CheckedTargets(
      scope,
      options.maxKeptTargets ?? MAX_KEPT_TARGETS,
      recentMs > 0 ? recentMembersFor(recentMs) : undefined,
      options.pinned,
    );
    this.#effects = options.effects;
  }

  // The per-evaluation call quota is the engine's (host-imports.ts), whatever the Capabilities.
  // set-memlock answers with typed values, never exceptions: anything unexpected (FFI missing,
  // fd exhaustion) is `internal`, with the detail in its call record.
  setMemlock(pid: number, bytes: bigint): SetMemlockResult {
    try {
      return setMemlockChecked(this.#targets, pid, bytes, NO_PROBE, this.#effects);
    } catch (e) {
      return {
        ok: false,
        error: 'internal',
        detail: `set-memlock failed unexpectedly: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
  }

  // query-vm-identity's answer (option<vm-identity>) has no error case: an unexpected failure
  // is thrown, and the engine turns it into a host-error deny that carries the detail to the
  // audit record (host-imports.ts, callHost). Answering none would hide it.
  queryVmIdentity(pid: number): VmIdentity | null {
    return queryVmIdentityChecked(this.#targets, pid, this.#effects);
  }

  release(): void {
    this.#targets.release();
  }
}

const NO_PROBE = {};

/** This thread's recent members with a time to live, one object per ttl. */
const recentByTtl = new Map<number, { members: RecentMembers; ttlMs: number }>();
function recentMembersFor(ttlMs: number): { members: RecentMembers; ttlMs: number } {
  let r = recentByTtl.get(ttlMs);
  if (r === undefined) recentByTtl.set(ttlMs, (r = { members: recentMembers, ttlMs }));
  return r;
}
