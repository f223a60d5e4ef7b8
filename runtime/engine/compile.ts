// The upload-time pipeline: component bytes -> size cap -> parse and check against the
// capgate:policy@1.0.0 world -> extract the core module that runs -> check its core ABI ->
// instrument (fuel, memory cap, oom flag) -> WebAssembly.compile. Nothing of the guest runs
// here. Every refusal is a CompileResult value naming what is wrong.
import { createHash } from 'node:crypto';
import { componentWit } from '@bytecodealliance/jco-transpile/wasm-tools';
import { MalformedBinary } from './component/byte-reader.ts';
import { COMPONENT_PREAMBLE, UnsupportedComponent, parseComponent } from './component/parse.ts';
import { PolicyRejection, invalidModule } from './component/rejection.ts';
import { validateComponent } from './component/validate.ts';
import { CORE_PREAMBLE, coreExports } from './instrument/core-sections.ts';
import { instrumentCoreModule } from './instrument/instrument.ts';
import { checkModuleLimits } from './instrument/module-limits.ts';
import type { CompiledPolicy, CompileRefusal, CompileResult } from './api.ts';
import { instantiationCost, trialInstantiation } from './instantiation-cost.ts';
import type { EngineLimits } from './limits.ts';
import { NotMetered, verifyInstrumentedCore } from './verify/verify-core.ts';

export { FUEL_EXPORT, OOM_EXPORT } from './instrument/instrument.ts';

const BUILD_HINT = 'build a component with `capgate build <core.wasm> -o policy.wasm`';

/**
 * Loads what the pipeline would otherwise read from disk at its first compile: jco's wasm-tools
 * reads and compiles its wasm files (asynchronously, from the package) on first use. The compile
 * process awaits this before its sandbox takes every file away.
 */
export async function loadCompilePipeline(): Promise<void> {
  // Awaits wasm-tools' initialisation, then refuses the empty component.
  await componentWit(new Uint8Array(0)).catch(() => undefined);
}

export async function compilePolicy(bytes: Uint8Array, limits: EngineLimits): Promise<CompileResult> {
  return (await compilePolicyWithCore(bytes, limits)).result;
}

/** A compile's result and, when it succeeded, the instrumented core module it compiled. */
export interface CompiledWithCore {
  /** The pipeline's own answer: compiled, or the policy refused (never "try again"). */
  result: { ok: true; policy: CompiledPolicy } | CompileRefusal;
  /** What `result.policy.module` was compiled from: a WebAssembly.Module cannot leave its process. */
  core?: Uint8Array;
}

/** compilePolicy, also giving the instrumented core module's bytes (for the compile process). */
export async function compilePolicyWithCore(bytes: Uint8Array, limits: EngineLimits): Promise<CompiledWithCore> {
  try {
    return await compileOrThrow(bytes, limits);
  } catch (err) {
    if (err instanceof PolicyRejection) return { result: { ok: false, kind: err.kind, message: bounded(err.message) } };
    if (err instanceof RangeError && /^limits\./.test(err.message)) throw err; // a configuration bug, not a bad policy
    // Fail closed: anything unexpected refuses the policy rather than crash the daemon.
    return {
      result: {
        ok: false,
        kind: 'invalid-module',
        message: bounded(`the policy could not be compiled: ${err instanceof Error ? err.message : String(err)}`),
      },
    };
  }
}

async function compileOrThrow(bytes: Uint8Array, limits: EngineLimits): Promise<CompiledWithCore> {
  if (bytes.length > limits.maxModuleBytes) {
    throw invalidModule(
      `the policy is ${bytes.length} bytes; the limit is ${limits.maxModuleBytes} bytes (limits.maxModuleBytes)`,
    );
  }
  checkPreamble(bytes);

  let summary: ReturnType<typeof parseComponent>;
  try {
    summary = parseComponent(bytes, limits);
  } catch (err) {
    if (err instanceof MalformedBinary) throw invalidModule(`malformed component: ${err.message}`);
    if (err instanceof UnsupportedComponent) throw invalidModule(err.message);
    throw err;
  }
  const iface = validateComponent(summary);

  const candidates = summary.coreModules
    .map((m, index) => ({ index, exports: safeExports(m) }))
    .filter(
      (c) =>
        c.exports.some((e) => e.name === 'memory' && e.kind === 'memory') &&
        c.exports.some((e) => e.name === 'evaluate' && e.kind === 'func'),
    );
  if (candidates.length !== 1) {
    throw invalidModule(
      candidates.length === 0
        ? 'no core module in the component exports both "memory" and "evaluate"'
        : `${candidates.length} core modules export "memory" and "evaluate"; a policy has exactly one main module`,
    );
  }
  const main = candidates[0]!;
  if (summary.evaluateModule !== null && summary.evaluateModule !== main.index) {
    throw invalidModule(
      'the component lifts "evaluate" from a different core module than the one that exports it with "memory"',
    );
  }

  const core = summary.coreModules[main.index]!;
  const shape = checkModuleLimits(core, limits);
  const instrumented = instrumentCoreModule(core, limits);
  // The daemon verifies the compile process's output with the same verifier (a taken-over process
  // could return anything); checked here too, so that an instrumenter that drifts from the
  // verifier fails every compile, in every test, instead of only the daemon's.
  try {
    verifyInstrumentedCore(instrumented.bytes, limits);
  } catch (err) {
    if (!(err instanceof NotMetered)) throw err;
    throw invalidModule(`the instrumented module fails the metering verifier (an engine bug): ${err.message}`);
  }
  const undeclared = instrumented.hostFunctions.filter((f) => !iface.hostFunctions.includes(f));
  if (undeclared.length > 0) {
    throw invalidModule(
      `the core module imports ${undeclared.join(', ')}, which the component's host import does not declare`,
    );
  }

  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(instrumented.bytes);
  } catch (err) {
    throw invalidModule(
      `the instrumented module does not compile (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  // Instantiation runs no guest code here (the start function is deferred); a failure (e.g. an
  // element segment out of its table's bounds) would fail every decision: refuse it now. The
  // daemon times its own trial of what the compile process returns (accept-compiled-core.ts):
  // this one is what the simulator's cost comes from, and it refuses a slow policy early.
  const trialUs = trialInstantiation(module, limits.maxInstantiateMs);
  let wit: string;
  try {
    wit = await componentWit(bytes);
  } catch (err) {
    throw invalidModule(
      `wasm-tools cannot decode the component's WIT: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return {
    result: {
      ok: true,
      policy: {
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: bytes.length,
        imports: iface.imports,
        exports: iface.exports,
        hostFunctions: instrumented.hostFunctions,
        wit,
        module,
        limits: { ...limits },
        instantiation: instantiationCost(shape, trialUs),
      },
    },
    core: instrumented.bytes,
  };
}

/** Messages quote guest-controlled names and types; keep them fit for logs and audit records. */
const MAX_MESSAGE_CHARS = 1000;
function bounded(message: string): string {
  return message.length <= MAX_MESSAGE_CHARS ? message : `${message.slice(0, MAX_MESSAGE_CHARS)}...`;
}

function checkPreamble(bytes: Uint8Array): void {
  const magicOk = bytes.length >= 8 && [0x00, 0x61, 0x73, 0x6d].every((b, i) => bytes[i] === b);
  if (!magicOk) throw invalidModule(`this is not a WebAssembly binary (no \\0asm header); ${BUILD_HINT}`);
  if (CORE_PREAMBLE.every((b, i) => bytes[i] === b)) {
    throw invalidModule(`this is a core wasm module, not a component; ${BUILD_HINT}`);
  }
  if (!COMPONENT_PREAMBLE.every((b, i) => bytes[i] === b)) {
    const version = bytes[4]! | (bytes[5]! << 8);
    const layer = bytes[6]! | (bytes[7]! << 8);
    throw invalidModule(
      `unsupported WebAssembly binary version 0x${version.toString(16)} layer ${layer}; capgate reads components of version 0xd, layer 1 (${BUILD_HINT})`,
    );
  }
}

/** Export list of a core module, or none if it is malformed (it then cannot be the main module). */
function safeExports(m: Uint8Array): ReturnType<typeof coreExports> {
  try {
    return coreExports(m);
  } catch {
    return [];
  }
}
