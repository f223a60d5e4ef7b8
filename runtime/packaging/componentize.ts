// Core module -> component against the contract world `capgate:policy/policy@1.0.0`.
// Uses the jco-transpile API (componentEmbed + componentNew); the `jco embed` CLI panics.
import { readFileSync } from 'node:fs';
import { componentEmbed, componentNew } from '@bytecodealliance/jco-transpile/wasm-tools';
import { packagePath } from '../bootstrap/package-root.ts';

export const POLICY_WIT_PATH = packagePath('host-api', 'wit', 'policy.wit');
export const POLICY_WORLD = 'policy';

export type ComponentizeErrorKind =
  /** Not a WebAssembly binary at all (wrong magic number or too short). */
  | 'not-wasm'
  /** Already a component: nothing to do, upload it as is. */
  | 'already-component'
  /** A core module whose imports/exports do not fit the world, or a malformed module. */
  | 'does-not-fit-world';

/** Why componentize refused its input. `message` says what is wrong and what to do. */
export class ComponentizeError extends Error {
  override readonly name = 'ComponentizeError';
  constructor(
    readonly kind: ComponentizeErrorKind,
    message: string,
    /** wasm-tools' own message, when it was wasm-tools that refused. */
    readonly toolMessage?: string,
  ) {
    super(message);
  }
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];
const CORE_VERSION = [0x01, 0x00, 0x00, 0x00];
// Components share the magic; their "version" word is 0x0d 0x00 with layer 0x01 0x00.
const COMPONENT_LAYER = [0x01, 0x00];

let witSource: string | undefined;
function policyWit(): string {
  witSource ??= readFileSync(POLICY_WIT_PATH, 'utf8');
  return witSource;
}

function startsWith(bytes: Uint8Array, at: number, expected: number[]): boolean {
  return expected.every((b, i) => bytes[at + i] === b);
}

/** Throws ComponentizeError unless `bytes` starts like a core module. */
export function assertCoreModule(bytes: Uint8Array): void {
  if (bytes.length < 8 || !startsWith(bytes, 0, WASM_MAGIC)) {
    throw new ComponentizeError(
      'not-wasm',
      `not a WebAssembly binary (${bytes.length} bytes, no "\\0asm" header): pass the .wasm core module your compiler produced (e.g. asc -o policy.core.wasm)`,
    );
  }
  if (startsWith(bytes, 6, COMPONENT_LAYER)) {
    throw new ComponentizeError(
      'already-component',
      'this is already a WebAssembly component, not a core module: upload it as is, no componentize step needed',
    );
  }
  if (!startsWith(bytes, 4, CORE_VERSION)) {
    throw new ComponentizeError(
      'not-wasm',
      `unsupported WebAssembly version ${Array.from(bytes.subarray(4, 8)).join(',')}: expected a core module (version 1)`,
    );
  }
}

function toolMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && 'payload' in e) return String((e as { payload: unknown }).payload);
  return String(e);
}

/**
 * Wraps a core module into a component of the world `policy` (WIT in host-api/wit/policy.wit).
 * The module must import only `capgate:policy/host@1.0.0` functions and export `evaluate`,
 * `cabi_post_evaluate`, `cabi_realloc` and `memory` (see host-api/README.md).
 */
export async function componentize(core: Uint8Array): Promise<Uint8Array> {
  assertCoreModule(core);
  let embedded: Uint8Array;
  try {
    embedded = await componentEmbed({
      binary: core,
      witSource: policyWit(),
      world: POLICY_WORLD,
      stringEncoding: 'utf8',
    });
  } catch (e) {
    throw fitError('embedding the capgate:policy WIT failed', e);
  }
  try {
    return await componentNew(embedded);
  } catch (e) {
    throw fitError('the core module does not fit the world capgate:policy/policy@1.0.0', e);
  }
}

function fitError(what: string, e: unknown): ComponentizeError {
  const detail = toolMessage(e);
  return new ComponentizeError(
    'does-not-fit-world',
    `${what}: ${detail}\n` +
      'A policy core module may import only "capgate:policy/host@1.0.0" (set-memlock, query-vm-identity, log) ' +
      'and must export evaluate, cabi_post_evaluate, cabi_realloc and memory with the signatures in host-api/README.md; ' +
      "with AssemblyScript, build with `capgate build --lang assemblyscript` (or asc `--runtime stub --use abort=capgateAbort`) and `export * from` the SDK's abi module.",
    detail,
  );
}
