// Messages between the daemon's main thread and its WAL checkpoint worker (wal-checkpointer.ts,
// checkpoint-worker.ts).
import type { Durability } from '../database.ts';

/** Test seams of the worker (faults at moments hard to reach otherwise); never from configuration. */
export interface CheckpointSeams {
  /** Every checkpoint throws this message instead of running. */
  failCheckpoints?: string;
}

export interface CheckpointWorkerInit {
  database: string;
  durability: Durability;
  /** Frames waiting in the WAL at which the worker checkpoints. */
  thresholdPages: number;
  /** How often the worker looks at the WAL (ms). */
  pollMs: number;
  /** Back-off after a failed checkpoint: first and longest wait (ms). */
  retryMs: { first: number; max: number };
  /** Shared slots through which the worker asks the main thread to hold its background writes (write-hold.ts). */
  hold: SharedArrayBuffer;
  seams?: CheckpointSeams;
}

/** What one checkpoint found and did. */
export interface CheckpointReport {
  /** Frames waiting in the WAL when the worker decided to checkpoint (null: the wal-index could not be read). */
  framesBefore: number | null;
  /** The last pass's answer (PRAGMA wal_checkpoint): frames in the WAL, frames copied back. */
  log: number;
  checkpointed: number;
  /** Some frames could not be copied (a reader still needed them, or a writer held a lock). */
  busy: boolean;
  passes: number;
  ms: number;
}

export type ToCheckpointWorker =
  | { type: 'check'; id: number }
  /** The log is complete (every frame copied back): make the first write to it, which starts it again. */
  | { type: 'restart' }
  | { type: 'stop' };

export type FromCheckpointWorker =
  | { type: 'ready' }
  | { type: 'checkpointed'; report: CheckpointReport }
  | { type: 'failed'; message: string }
  /** The wal-index header could not be read; the worker checkpoints at every look meanwhile. Sent once. */
  | { type: 'wal-index-unreadable'; reason: string }
  /** Answer to 'check': what the look found afterwards. */
  | { type: 'checked'; id: number; framesWaiting: number | null };
