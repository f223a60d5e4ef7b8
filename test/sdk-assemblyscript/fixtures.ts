// Shared test data: the built example modules and simulated worlds around them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GUEST_EXAMPLES_DIR } from '../../scripts/build-guests.ts';
import type { Capabilities, SetMemlockResult } from '../../runtime/capabilities/capabilities.ts';
import type { SimulatedWorld } from '../../runtime/capabilities/simulated/world.ts';
import type { CapabilityError, PolicyRequest, VmIdentity } from '../../runtime/contract/types.ts';

export const AS_BUILD_DIR = join(GUEST_EXAMPLES_DIR, 'assemblyscript', 'build');
export const AS_EXAMPLES = ['memlock-cap', 'vfio-only'] as const;
export type AsExample = (typeof AS_EXAMPLES)[number];

export function coreBytes(name: AsExample): Uint8Array {
  return readFileSync(join(AS_BUILD_DIR, `${name}.core.wasm`));
}
export function componentBytes(name: AsExample): Uint8Array {
  return readFileSync(join(AS_BUILD_DIR, `${name}.wasm`));
}
export function coreModule(name: AsExample): WebAssembly.Module {
  return new WebAssembly.Module(coreBytes(name));
}

export const REQUESTER = 4100;
export const TARGET = 4101;
export const FOREIGN = 5200; // in another tenant's VM
export const GiB = 1024n ** 3n;

/** A world where REQUESTER and TARGET form one VM with `labels`, FOREIGN belongs to another VM. */
export function world(labels: Array<[string, string]>, opts: { canRaiseHardLimit?: boolean } = {}): SimulatedWorld {
  const identity: VmIdentity = { uuid: 'c0ffee00-0000-4000-8000-000000000001', name: 'vm-a', id: 7, labels };
  return {
    requesterPid: REQUESTER,
    vms: [
      { identity, pids: [REQUESTER, TARGET] },
      { identity: { uuid: 'c0ffee00-0000-4000-8000-000000000002', name: 'vm-b', id: 8, labels: [] }, pids: [FOREIGN] },
    ],
    processes: [],
    canRaiseHardLimit: opts.canRaiseHardLimit ?? true,
  };
}

export function request(bytes: bigint, targetPid = TARGET): PolicyRequest {
  return { operation: 'set-memlock', requesterPid: REQUESTER, requesterUid: 107, targetPid, bytes };
}

/** Capabilities whose set-memlock always fails with `error` (the examples only map it to a reason). */
export function failingSetMemlock(base: Capabilities, error: CapabilityError): Capabilities {
  return {
    queryVmIdentity: (pid) => base.queryVmIdentity(pid),
    setMemlock: (): SetMemlockResult => ({ ok: false, error }),
  };
}
