// Messages between the daemon (compile-process.ts) and its compile launcher (launcher-main.ts),
// over the launcher's IPC channel; jobs, which carry a policy's bytes, go on the launcher's stdin
// instead (job-frames.ts says why). `proc` numbers the compile processes the daemon asked for, so
// that news of one it already gave up (killed past its time) is told from the current one's.
import type { CompileResultOnWire, LandlockReport, SandboxReport } from './compile-protocol.ts';

/** A job's head on the launcher's stdin (job-frames.ts): a few hundred bytes; more is not a job. */
export const MAX_JOB_HEAD_BYTES = 64 * 1024;
/** A job's bytes: a component of at most engine.limits.maxModuleBytes, itself at most 256 MiB. */
export const MAX_JOB_BYTES = 256 * 1024 * 1024;

export type ToLauncher =
  /** Start compile process `proc` (the previous one, if any, is already told to stop). */
  | { type: 'start'; proc: number; maxHeapMb: number }
  /** Kill it (SIGKILL): past its time, or nothing left to compile. */
  | { type: 'stop'; proc: number };

export type FromLauncher =
  /**
   * The launcher is up; `problem`: what of its confinement failed (re-execution, no_new_privs,
   * its filter, its Landlock domain); `landlock`: the domain its first image entered before it
   * re-executed (every thread of the launcher and of its compile processes is in it).
   */
  | { type: 'launcher-ready'; problem?: string; landlock: LandlockReport }
  | { type: 'started'; proc: number; pid: number }
  /** The compile process loaded the pipeline and says this of its sandbox (checked by the launcher for shape only). */
  | { type: 'ready'; proc: number; sandbox: SandboxReport }
  /** A job's result, its shape checked and its sha256 and size checked against the job's bytes. */
  | { type: 'result'; proc: number; id: number; result: CompileResultOnWire }
  /**
   * The compile process is gone (exited, or never started). `output`: the end of its stdout and
   * stderr (V8 prints its heap-limit error there); `why`: the launcher's reason if it killed it
   * for what it sent.
   */
  | { type: 'exited'; proc: number; code: number | null; signal: string | null; output: string; why?: string };
