// Messages between the engine (main thread) and an evaluation worker. Jobs travel on one
// MessagePort, answers on another; a SharedArrayBuffer of counters wakes each side, so neither
// side goes through its event loop on the hot path (the worker blocks in Atomics.wait and reads
// with receiveMessageOnPort; the main side awaits Atomics.waitAsync).
import type { MessagePort } from 'node:worker_threads';
import type { PolicyRequest } from '../../contract/types.ts';
import type { CapabilitySpec } from '../../capabilities/spec.ts';
import type { EngineLimits } from '../limits.ts';
import type { Outcome } from '../outcome.ts';

export type ToWorker =
  | { type: 'load'; sha256: string; module: WebAssembly.Module; limits: EngineLimits }
  | { type: 'unload'; sha256: string }
  | { type: 'evaluate'; id: number; sha256: string; request: PolicyRequest; capabilities: CapabilitySpec };

export interface FromWorker {
  id: number;
  outcome: Outcome;
}

export interface WorkerInit {
  control: SharedArrayBuffer;
  jobs: MessagePort;
  results: MessagePort;
  /** Load the Linux capabilities (koffi) at start-up; the simulator and tests do without. */
  linuxCapabilities: boolean;
}

/** Int32 slots of WorkerInit.control. */
export const CONTROL = {
  /** Bumped by the main side after posting on `jobs`. */
  jobs: 0,
  /** Bumped by the worker after posting an answer on `results`. */
  answers: 1,
  /** Set to 1 by the worker once it is ready to take jobs. */
  ready: 2,
  length: 3,
} as const;
