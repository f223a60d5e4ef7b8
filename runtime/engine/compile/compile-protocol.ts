// Messages between the engine and its compile process (compile-main.ts), over the IPC channel.
import type { CompiledPolicy, CompileResult } from '../api.ts';
import type { EngineLimits } from '../limits.ts';

export interface CompileJob {
  id: number;
  bytes: Uint8Array;
  limits: EngineLimits;
}

/**
 * A compile's result as it crosses processes: a WebAssembly.Module cannot, so a compiled policy
 * comes as the instrumented core module's bytes, compiled again on the engine's side.
 */
export type CompileResultOnWire =
  | { ok: true; policy: Omit<CompiledPolicy, 'module'>; core: Uint8Array }
  | Extract<CompileResult, { ok: false }>;

export type FromCompileProcess =
  /** Sent once the process has loaded the compile pipeline (binaryen, wasm-tools). */
  { type: 'ready' } | { type: 'result'; id: number; result: CompileResultOnWire };
