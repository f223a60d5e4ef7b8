// The simulator for the commands that decide locally (`capgate test`, `capgate eval`): opened
// on demand, with policy files read and compiled as the daemon would compile an upload.
import { readFile } from 'node:fs/promises';
import type { CompiledPolicy } from '../engine/api.ts';
import type { EngineLimits } from '../engine/limits.ts';
import type { Simulator } from '../simulator/simulator.ts';
import { CliError, usageError } from './cli-error.ts';
import { EXIT } from './exit-codes.ts';

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

/** The simulator (simulator/simulator.ts), with `limits` over the daemon's. Close it. */
export async function openSimulator(limits: Partial<EngineLimits> = {}): Promise<Simulator> {
  // Loaded on demand: commands that never evaluate should not pay for the engine at start-up.
  const { Simulator } = await import('../simulator/simulator.ts');
  return new Simulator(limits);
}

/** Reads and compiles a policy file into `simulator`, or throws the CliError that says why not. */
export async function compileLocal(simulator: Simulator, file: string): Promise<CompiledPolicy> {
  const bytes = await readPolicyFile(file);
  const compiled = await simulator.compile(bytes);
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
  return compiled.policy;
}
