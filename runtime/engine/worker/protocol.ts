// Messages between the engine (main thread) and an evaluation worker. Jobs and answers travel
// in two shared-memory mailboxes (one job in flight per worker), encoded with a fixed schema
// (job-codec.ts, outcome-codec.ts); what does not fit or fall in the schema takes a MessagePort
// instead (structured clone), as do policy loads. A SharedArrayBuffer of counters wakes each
// side, so neither goes through its event loop on the hot path: the worker polls briefly
// (adaptive-spin.ts), then blocks in Atomics.wait; the main side awaits Atomics.waitAsync.
import type { MessagePort } from 'node:worker_threads';
import type { PolicyRequest } from '../../contract/types.ts';
import type { CapabilitySpec } from '../../capabilities/spec.ts';
import type { EngineLimits } from '../limits.ts';
import type { TapeEntry } from '../speculative/capability-tape.ts';
import type { Outcome } from '../outcome.ts';
import type { SharedJournal } from '../../effects/effect-journal.ts';

export type ToWorker =
  | { type: 'load'; sha256: string; module: WebAssembly.Module; limits: EngineLimits }
  | { type: 'unload'; sha256: string }
  /**
   * `replay`: the capability calls of a speculative run that ran out of its slice (rare: port only).
   * `context`: the decision's DecisionContext as JSON, for the intents of its effects (effects/).
   */
  | {
      type: 'evaluate';
      id: number;
      sha256: string;
      request: PolicyRequest;
      capabilities: CapabilitySpec;
      replay?: TapeEntry[];
      context?: string;
    };

export interface FromWorker {
  id: number;
  outcome: Outcome;
}

export interface WorkerInit {
  control: SharedArrayBuffer;
  /** The job mailbox: one encoded job, valid while CONTROL.jobPending is 1. */
  jobBox: SharedArrayBuffer;
  /** The answer mailbox: one encoded answer of CONTROL.answerLength bytes. */
  answerBox: SharedArrayBuffer;
  jobs: MessagePort;
  results: MessagePort;
  /** Load the Linux capabilities (koffi) at start-up; the simulator and tests do without. */
  linuxCapabilities: boolean;
  /** The pidfds the worker has open (os/pidfd-ledger.ts), closed by the main side if it is terminated. */
  pidfds: SharedArrayBuffer;
  /** The current job's capability calls, mirrored before they act (effects/effect-ledger.ts). */
  effects: SharedArrayBuffer;
  /** The daemon's effects journal, which the worker maps to record intents (effects/effect-journal.ts); none: not journaled. */
  effectsJournal?: SharedJournal;
  /** This worker's id in the journal's slot claims. */
  journalOwner: number;
  /** Test seam: the worker exits right after its first effect (a crash at the worst moment). */
  exitAfterEffect?: boolean;
}

/** Int32 slots of WorkerInit.control. */
export const CONTROL = {
  /** Bumped by the main side after posting on `jobs`. */
  jobs: 0,
  /** Bumped by the worker after posting an answer on `results`. */
  answers: 1,
  /** Set to 1 by the worker once it is ready to take jobs. */
  ready: 2,
  /** 1 while the job mailbox holds a job the worker has not taken yet. */
  jobPending: 3,
  /** Bytes of the answer in the answer mailbox; -1: the answer is on the `results` port. */
  answerLength: 4,
  /** The worker's kernel thread id, set before `ready` (its CPU clock: os/thread-cpu-clock.ts). */
  threadId: 5,
  length: 6,
} as const;

/** Size of each mailbox. Typical jobs and answers take a few hundred bytes. */
export const MAILBOX_BYTES = 64 * 1024;
