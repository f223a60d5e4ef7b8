// Runs inside a worker thread, as the engine's evaluation workers do: real capabilities there.
import { parentPort, workerData } from 'node:worker_threads';
import { createLinuxCapabilities } from '../../../runtime/capabilities/linux/index.ts';
import type { RegisteredVm } from '../../../runtime/identity/vm.ts';

const { scope, pid, bytes } = workerData as { scope: RegisteredVm; pid: number; bytes: bigint };
const caps = createLinuxCapabilities(scope);
parentPort?.postMessage({ set: caps.setMemlock(pid, bytes), identity: caps.queryVmIdentity(pid) });
