// The engine the daemon uses, run locally for `capgate test`: same validation, instrumentation,
// fuel and ABI, with one worker since the simulator evaluates one case at a time.
import { readFile } from 'node:fs/promises';
import type { CompiledPolicy, PolicyEngine } from '../engine/api.ts';
import { DEFAULT_LIMITS, type EngineLimits } from '../engine/limits.ts';
import { CliError, usageError } from './cli-error.ts';
import { EXIT } from './exit-codes.ts';

export interface LocalPolicy {
  engine: PolicyEngine;
  policy: CompiledPolicy;
}

export async function readPolicyFile(file: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    throw usageError(
      `cannot read policy ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      'pass the path of a .wasm policy component',
    );
  }
  const kind = wasmKind(bytes);
  if (kind === 'core')
    throw usageError(
      `${file} is a core WebAssembly module, not a policy component`,
      `componentize it first: capgate build ${file} -o policy.wasm`,
    );
  if (kind === 'other')
    throw usageError(
      `${file} is not a WebAssembly component (no "\\0asm" header)`,
      'pass the .wasm written by `capgate build` or your toolchain',
    );
  return bytes;
}

/** From the 8-byte header: magic, then version 1 (core module) or 0x0d + layer 1 (component). */
export function wasmKind(bytes: Uint8Array): 'core' | 'component' | 'other' {
  const magic = bytes[0] === 0x00 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  if (bytes.length < 8 || !magic) return 'other';
  if (bytes[6] === 0x01 && bytes[7] === 0x00) return 'component';
  if (bytes[4] === 0x01 && bytes[5] === 0x00 && bytes[6] === 0x00 && bytes[7] === 0x00) return 'core';
  return 'other';
}

/** The daemon's engine, locally: one worker (the simulator decides one case at a time). Close it. */
export async function openLocalEngine(limits: Partial<EngineLimits> = {}): Promise<PolicyEngine> {
  // Loaded on demand: commands that never evaluate should not pay for the engine at start-up.
  const [{ Engine }, { compilePolicy }] = await Promise.all([
    import('../engine/engine.ts'),
    import('../engine/compile.ts'),
  ]);
  // Compiled on this thread, which serves nobody else here: no compile worker to start (it costs a
  // CLI run ~1 s of start-up, and competes with the first evaluation's worker).
  return new Engine({
    limits: { ...DEFAULT_LIMITS, ...limits },
    workers: 1,
    linuxCapabilities: false,
    compile: compilePolicy,
  });
}

/**
 * Reads and compiles a policy file into `engine`, or throws the CliError that says why not. Then
 * warms the worker up as the daemon does at push, so the first case is timed as the daemon's
 * first request would be, not with the worker's start-up in its deadline.
 */
export async function compileLocal(engine: PolicyEngine, file: string): Promise<CompiledPolicy> {
  const bytes = await readPolicyFile(file);
  const compiled = await engine.compile(bytes);
  if (!compiled.ok) {
    throw new CliError(
      `${file} was rejected (${compiled.kind}): ${compiled.message}`,
      EXIT.failed,
      'the daemon would reject it too; fix the policy and rebuild it',
      {
        kind: compiled.kind,
      },
    );
  }
  const { warmUp } = await import('../engine/warm-up.ts');
  await warmUp(engine, compiled.policy.sha256, 1);
  return compiled.policy;
}

/** Compiles the policy with the daemon's engine; the caller must close `engine`. */
export async function loadLocalPolicy(file: string, limits: Partial<EngineLimits> = {}): Promise<LocalPolicy> {
  const engine = await openLocalEngine(limits);
  try {
    return { engine, policy: await compileLocal(engine, file) };
  } catch (e) {
    await engine.close();
    throw e;
  }
}
