// Messages between the engine (main thread) and its compile worker (compile-main.ts).
import type { CompileResult } from '../api.ts';
import type { EngineLimits } from '../limits.ts';

export interface CompileJob {
  id: number;
  bytes: Uint8Array;
  limits: EngineLimits;
}

export type FromCompileWorker =
  /** Sent once the worker has loaded the compile pipeline (binaryen, wasm-tools). */
  /** `tid`: its kernel thread id, once it runs at its low CPU priority (null: it could not). */
  | { type: 'ready'; tid: number | null }
  /** A compiled policy's WebAssembly.Module crosses threads by structured clone. */
  | { type: 'result'; id: number; result: CompileResult };
