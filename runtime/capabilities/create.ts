// CapabilitySpec -> Capabilities, called inside the evaluation worker so host calls stay there.
import type { Capabilities } from './capabilities.ts';
import type { CapabilitySpec } from './spec.ts';
import { createSimulatedCapabilities } from './simulated/capabilities.ts';
import type { RegisteredVm } from '../identity/vm.ts';

type LinuxFactory = (scope: RegisteredVm, options?: { recentMembersMs?: number; pinned?: { pid: number; startTime: number } }) => Capabilities;

let linuxFactory: LinuxFactory | undefined;
let linuxLoadError: string | undefined;

/**
 * Loads the Linux implementation (koffi, /proc) once. Separate and async so that the simulator
 * and tests never load it, and so a broken platform shows up as a clear error, not a crash.
 */
export async function loadLinuxCapabilities(): Promise<void> {
  if (linuxFactory !== undefined || linuxLoadError !== undefined) return;
  try {
    // A computed specifier: the module is optional at type-check time and validated below.
    const specifier = './linux/index.ts';
    const mod = (await import(specifier)) as { createLinuxCapabilities?: unknown };
    if (typeof mod.createLinuxCapabilities !== 'function') throw new Error('runtime/capabilities/linux/index.ts exports no createLinuxCapabilities');
    linuxFactory = mod.createLinuxCapabilities as LinuxFactory;
  } catch (err) {
    linuxLoadError = err instanceof Error ? err.message : String(err);
  }
}

export function createCapabilities(spec: CapabilitySpec): Capabilities {
  switch (spec.kind) {
    case 'simulated':
      return createSimulatedCapabilities(spec.world);
    case 'linux':
      if (linuxFactory === undefined) {
        throw new Error(`Linux capabilities are not available: ${linuxLoadError ?? 'call loadLinuxCapabilities() first'}`);
      }
      return linuxFactory(spec.scope, {
        ...(spec.recentMembersMs === undefined ? {} : { recentMembersMs: spec.recentMembersMs }),
        ...(spec.pinned === undefined ? {} : { pinned: spec.pinned }),
      });
  }
}
