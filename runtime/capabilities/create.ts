// CapabilitySpec -> Capabilities, called inside the evaluation worker so host calls stay there.
import type { Capabilities } from './capabilities.ts';
import type { CapabilitySpec } from './spec.ts';
import { createSimulatedCapabilities } from './simulated/capabilities.ts';
import type { RegisteredVm } from '../identity/vm.ts';
import type { EffectSink } from '../effects/effect-sink.ts';
import type { MemlockEffect } from './capabilities.ts';

type LinuxFactory = (
  scope: RegisteredVm,
  options?: {
    recentMembersMs?: number | undefined;
    pinned?: { pid: number; startTime: number } | undefined;
    effects?: EffectSink | undefined;
  },
) => Capabilities;
type LinuxUndo = (u: { pid: number; expected: { soft: bigint; hard: bigint }; effect: MemlockEffect }) => string;
type LinuxLimitNow = (pid: number, startTime: number) => { soft: bigint; hard: bigint } | null;

let linuxFactory: LinuxFactory | undefined;
let linuxUndo: LinuxUndo | undefined;
let linuxLimitNow: LinuxLimitNow | undefined;
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
    const mod = (await import(specifier)) as {
      createLinuxCapabilities?: unknown;
      undoSetMemlock?: unknown;
      memlockNow?: unknown;
    };
    if (
      typeof mod.createLinuxCapabilities !== 'function' ||
      typeof mod.undoSetMemlock !== 'function' ||
      typeof mod.memlockNow !== 'function'
    ) {
      throw new Error(
        'runtime/capabilities/linux/index.ts does not export createLinuxCapabilities, undoSetMemlock and memlockNow',
      );
    }
    linuxFactory = mod.createLinuxCapabilities as LinuxFactory;
    linuxUndo = mod.undoSetMemlock as LinuxUndo;
    linuxLimitNow = mod.memlockNow as LinuxLimitNow;
  } catch (err) {
    linuxLoadError = err instanceof Error ? err.message : String(err);
  }
}

/** `effects`: where the real capabilities record their calls (the simulated ones change nothing real). */
export function createCapabilities(spec: CapabilitySpec, effects?: EffectSink): Capabilities {
  switch (spec.kind) {
    case 'simulated':
      return createSimulatedCapabilities(spec.world);
    case 'linux':
      if (linuxFactory === undefined) {
        throw new Error(
          `Linux capabilities are not available: ${linuxLoadError ?? 'call loadLinuxCapabilities() first'}`,
        );
      }
      return linuxFactory(spec.scope, { recentMembersMs: spec.recentMembersMs, pinned: spec.pinned, effects });
  }
}

function loaded<T>(f: T | undefined): T {
  if (f === undefined)
    throw new Error(`Linux capabilities are not available: ${linuxLoadError ?? 'call loadLinuxCapabilities() first'}`);
  return f;
}

/** Undoes one set-memlock effect (capabilities/linux/undo-memlock.ts); after loadLinuxCapabilities(). */
export const undoMemlockEffect: LinuxUndo = (u) => loaded(linuxUndo)(u);

/** The memlock limit of a process now, if it is still the one that started at `startTime`. */
export const memlockNow: LinuxLimitNow = (pid, startTime) => loaded(linuxLimitNow)(pid, startTime);
