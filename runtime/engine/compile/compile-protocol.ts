// Messages between the compile launcher (launcher-main.ts) and its compile process
// (compile-main.ts), in frames (frames.ts) over the process's descriptor COMPILE_CHANNEL_FD.
import type { CompiledPolicy, CompileRefusal } from '../api.ts';
import type { EngineLimits } from '../limits.ts';

/** The compile process's channel to the launcher: its fourth stdio descriptor (a socket pair). */
export const COMPILE_CHANNEL_FD = 3;

export interface CompileJob {
  id: number;
  bytes: Uint8Array;
  limits: EngineLimits;
}

/**
 * A compile's result as it crosses processes: a WebAssembly.Module cannot, so a compiled policy
 * comes as the instrumented core module's bytes, compiled again on the engine's side (in the
 * verifier's worker, accept-compiled-core.ts), where its instantiation is timed again too.
 */
export type CompileResultOnWire =
  | { ok: true; policy: Omit<CompiledPolicy, 'module'>; core: Uint8Array }
  | CompileRefusal;

/**
 * The Landlock domain a process entered (os/landlock.ts): the ABI whose rights it handled and
 * whether every thread is in it; or, with `abi` 0, why the kernel gives none.
 */
export type LandlockReport = { abi: number; threads: 'all' | 'calling' } | { abi: 0; why: string };

/** Whether the compile process sandboxed itself (compile-sandbox.ts) before taking a job. */
export type SandboxReport =
  | {
      applied: true;
      /** What applying it took in the process, in milliseconds (the re-execution not included). */
      ms: number;
      /** Inherited descriptors it closed. */
      closedFds: number[];
      boundingSet: string;
      /** The domain that takes every file away from it. */
      landlock: LandlockReport;
    }
  | { applied: false; missing: string };

export type FromCompileProcess =
  /** Sent once the process has loaded the compile pipeline (binaryen, wasm-tools) and sandboxed itself. */
  { type: 'ready'; sandbox: SandboxReport } | { type: 'result'; id: number; result: CompileResultOnWire };
