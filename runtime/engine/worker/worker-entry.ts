// How the engine's threads are started: every worker (evaluation or compile) goes through one
// bootstrap file, which loads capgate's code and then the entry named here. One place to
// change when the way workers find their code changes.
import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOTSTRAP = new URL('./bootstrap.mjs', import.meta.url);

/** The engine's worker entries (bootstrap.mjs maps each to its module). */
export type WorkerEntry = 'evaluate' | 'compile';

/** Starts a worker on `entry`; `workerData` reaches it unchanged, with `entry` added. */
export function startWorker(entry: WorkerEntry, workerData: object, options: Omit<WorkerOptions, 'workerData'> = {}): Worker {
  return new Worker(BOOTSTRAP, { ...options, workerData: { ...workerData, entry } });
}
