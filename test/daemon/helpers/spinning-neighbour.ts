// A real daemon with two VMs, a hostile one and a victim, and one policy bound for both: on
// STORM_BYTES it calls set-memlock and then spins (past the main thread's slice, on in a worker,
// until fuel or the deadline ends it); on anything else it calls set-memlock and allows.
import { hostilePolicy } from '../../support/hostile-policies.ts';
import type { DaemonConfigInput } from '../../../runtime/daemon/config.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './daemon-process.ts';
import { vmFor } from './fixtures.ts';
import { removeTempDirs, tempDir } from './temp-dir.ts';
import { VmAgent } from './vm-agent-handle.ts';

export interface SpinningNeighbour {
  daemon: DaemonProcess;
  hostile: VmAgent;
  victim: VmAgent;
  /** A process of each VM whose limit its requests ask for. */
  hostileTarget: number;
  victimTarget: number;
  stop(): Promise<void>;
}

export async function startSpinningNeighbour(config: DaemonConfigInput): Promise<SpinningNeighbour> {
  const daemon = await spawnDaemon(daemonConfig(tempDir(), config));
  const [hostile, victim] = await Promise.all([VmAgent.start(), VmAgent.start()]);
  const stop = async (): Promise<void> => {
    await Promise.all([hostile.stop(), victim.stop()]);
    await daemon.stop();
    removeTempDirs();
  };
  try {
    const [hostileTarget, victimTarget] = await Promise.all([hostile.spawnTarget(), victim.spawnTarget()]);
    await daemon.admin.registerVm(vmFor(hostile.pid, 'hostile-vm'));
    await daemon.admin.registerVm(vmFor(victim.pid, 'victim-vm'));
    await daemon.admin.pushPolicy('spin', await hostilePolicy('memlock-then-spin', { onStormOnly: true }));
    await daemon.admin.bind('set-memlock', { policy: 'spin' });
    return { daemon, hostile, victim, hostileTarget, victimTarget, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
