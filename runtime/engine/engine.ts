// The PolicyEngine: compiles policies on the main thread (once per sha256) and evaluates them in
// a fresh instance each: first speculatively on this thread under a small fuel slice
// (speculative/), and in a worker pool under a wall-clock deadline whenever that is not enough.
import { availableParallelism } from 'node:os';
import type { PolicyRequest } from '../contract/types.ts';
import type { CapabilitySpec } from '../capabilities/spec.ts';
import type { CompiledPolicy, CompileResult, EvaluateOptions, PolicyEngine } from './api.ts';
import { DEFAULT_LIMITS, type EngineLimits } from './limits.ts';
import { denyOutcome } from './deny-outcome.ts';
import type { Outcome } from './outcome.ts';
import { WorkerPool } from './worker/worker-pool.ts';
import { DEFAULT_INLINE_FUEL, InlineRunner, type InlineResult } from './speculative/inline-runner.ts';
import { createCapabilities, loadLinuxCapabilities } from '../capabilities/create.ts';
import type { Capabilities } from '../capabilities/capabilities.ts';

export type CompileFn = (bytes: Uint8Array, limits: EngineLimits) => Promise<CompileResult>;

export interface EngineOptions {
  /** Overrides of DEFAULT_LIMITS. */
  limits?: Partial<EngineLimits>;
  /** Evaluation workers; default min(2, available cores). */
  workers?: number;
  /** Load the Linux capabilities in the workers (the daemon); the simulator and tests say false. */
  linuxCapabilities?: boolean;
  /** The compile step; default compilePolicy from ./compile.ts. */
  compile?: CompileFn;
  /**
   * Fuel of the speculative run on the calling thread that precedes the worker (speculative/);
   * 0 sends every evaluation straight to a worker. Default DEFAULT_INLINE_FUEL.
   */
  inlineFuel?: number;
}

// The compile pipeline (binaryen, ~75 MB, and jco's wasm-tools) loads on the first compile: a
// daemon with nothing bound, and every thread that only evaluates, never pays for it.
const compilePolicy: CompileFn = async (bytes, limits) => (await import('./compile.ts')).compilePolicy(bytes, limits);


export class Engine implements PolicyEngine {
  readonly limits: Readonly<EngineLimits>;
  readonly #pool: WorkerPool;
  readonly #compile: CompileFn;
  readonly #policies = new Map<string, CompiledPolicy>();
  readonly #inline: InlineRunner | undefined;
  /** Loads the Linux capabilities on this thread too (speculative runs); `#linuxLoaded` once done. */
  #linuxHere: Promise<void> | undefined;
  #linuxLoaded = false;
  #closed = false;

  constructor(options: EngineOptions = {}) {
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...options.limits });
    this.#compile = options.compile ?? compilePolicy;
    const inlineFuel = options.inlineFuel ?? DEFAULT_INLINE_FUEL;
    // Without the Linux capabilities there is nothing this thread could run speculatively.
    this.#inline = inlineFuel > 0 && options.linuxCapabilities !== false ? new InlineRunner(inlineFuel) : undefined;
    this.#pool = new WorkerPool({
      size: options.workers ?? Math.min(2, availableParallelism()),
      linuxCapabilities: options.linuxCapabilities ?? true,
    });
  }

  /** Resolves once every worker has started; evaluate() works without it (it waits per job). */
  ready(): Promise<void> {
    return this.#pool.ready();
  }

  /** Worker replacements so far (deadline expiries, crashes). */
  get workerRespawns(): number {
    return this.#pool.respawns;
  }

  get workerThreadIds(): number[] {
    return this.#pool.threadIds;
  }

  async compile(bytes: Uint8Array): Promise<CompileResult> {
    let result: CompileResult;
    try {
      result = await this.#compile(bytes, { ...this.limits });
    } catch (err) {
      return { ok: false, kind: 'invalid-module', message: `compiling the policy failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (result.ok) this.load(result.policy);
    return result;
  }

  /** Makes an already compiled policy (e.g. recompiled at start-up) available to the workers. */
  load(policy: CompiledPolicy): void {
    if (this.#closed) throw new Error('Engine.load: the engine is closed');
    this.#policies.set(policy.sha256, policy);
    this.#pool.load(policy.sha256, { module: policy.module, limits: policy.limits });
    this.#inline?.load(policy.sha256, policy.module, policy.limits);
  }

  policy(sha256: string): CompiledPolicy | undefined {
    return this.#policies.get(sha256);
  }

  async evaluate(sha256: string, request: PolicyRequest, capabilities: CapabilitySpec, options: EvaluateOptions = {}): Promise<Outcome> {
    try {
      if (this.#closed) return denyOutcome('host-error', 'the engine is closed');
      const policy = this.#policies.get(sha256);
      if (policy === undefined) return denyOutcome('host-error', `no compiled policy with sha256 ${sha256}: compile or load it first`);
      const deadlineMs = options.deadlineMs ?? policy.limits.deadlineMs;
      if (!(deadlineMs > 0)) return denyOutcome('host-error', `deadline must be a positive number of milliseconds, got ${deadlineMs}`);
      if (this.#inline !== undefined && capabilities.kind === 'linux') {
        if (!this.#linuxLoaded) {
          await (this.#linuxHere ??= loadLinuxCapabilities());
          this.#linuxLoaded = true;
        }
        const attempt = this.#tryInline(sha256, request, capabilities);
        if (attempt.kind === 'decided') return attempt.outcome;
        if (attempt.kind === 'continue') {
          const left = deadlineMs - attempt.spentUs / 1000;
          const o = left > 0 ? await this.#pool.run({ sha256, request, capabilities, replay: attempt.tape }, left) : denyOutcome('timeout', `the ${deadlineMs} ms deadline passed during the first run`);
          return { ...o, durationUs: o.durationUs + attempt.spentUs };
        }
      }
      return await this.#pool.run({ sha256, request, capabilities }, deadlineMs);
    } catch (err) {
      // e.g. a CapabilitySpec that cannot be cloned to the worker.
      return denyOutcome('host-error', `evaluation failed in the engine: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * Only the real host is tried on this thread: its effects are in the world, where a replayed
   * run in the worker sees them. The simulated host keeps its state per run, so a replay there
   * would lose the first run's effects; simulated evaluations always go to a worker.
   */
  #tryInline(sha256: string, request: PolicyRequest, spec: CapabilitySpec): InlineResult {
    let capabilities: Capabilities;
    try {
      capabilities = createCapabilities(spec);
    } catch {
      return { kind: 'skipped' }; // the worker reports why it cannot build them either
    }
    return this.#inline!.run(sha256, request, capabilities);
  }

  /** Speculative runs on this thread: decided here, continued in a worker, not attempted. */
  get inlineStats(): Readonly<InlineRunner['stats']> | undefined {
    return this.#inline?.stats;
  }

  unload(sha256: string): void {
    this.#policies.delete(sha256);
    this.#pool.unload(sha256);
    this.#inline?.unload(sha256);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
  }
}
