// The PolicyEngine: compiles policies in a compile process (once per sha256, bounded in time and
// memory) and evaluates them in a fresh instance each: first speculatively on this thread under
// a small fuel slice and time budget (speculative/), and in a worker pool under a wall-clock
// deadline whenever that is not enough (the simulator's counts the worker's CPU time instead).
import { availableParallelism } from 'node:os';
import type { PolicyRequest } from '../contract/types.ts';
import type { CapabilitySpec } from '../capabilities/spec.ts';
import type { CompiledPolicy, CompileResult, EvaluateOptions, PolicyEngine } from './api.ts';
import { DEFAULT_LIMITS, type EngineLimits } from './limits.ts';
import { denyOutcome } from './deny-outcome.ts';
import type { CapabilityCall, Outcome } from './outcome.ts';
import { CompileProcess, type CompileProcessOptions } from './compile/compile-process.ts';
import { WorkerPool } from './worker/worker-pool.ts';
import { wholeDeadline } from './timeout-detail.ts';
import type { CpuDeadlineClocks } from './worker/cpu-deadline.ts';
import type { EvaluateJob } from './worker/worker-slot.ts';
import { DEFAULT_INLINE_FUEL, InlineRunner, type GuestTurn, type InlineResult } from './speculative/inline-runner.ts';
import { createCapabilities, loadLinuxCapabilities, undoMemlockEffect } from '../capabilities/create.ts';
import { createSimulatedCapabilities } from '../capabilities/simulated/capabilities.ts';
import type { EffectJournal } from '../effects/effect-journal.ts';
import { decisionContextJson, type DecisionContext } from '../effects/effect-intent.ts';
import { effectSink } from '../effects/effect-sink.ts';
import { hasEffect, undoEffects } from '../effects/undo-effects.ts';
import { tapeCalls, type TapeEntry } from './speculative/capability-tape.ts';
import type { Capabilities } from '../capabilities/capabilities.ts';

export type CompileFn = (bytes: Uint8Array, limits: EngineLimits) => Promise<CompileResult>;

export interface EngineOptions {
  /** Overrides of DEFAULT_LIMITS. */
  limits?: Partial<EngineLimits>;
  /** Evaluation workers; default min(2, available cores). */
  workers?: number;
  /** Load the Linux capabilities in the workers (the daemon); the simulator and tests say false. */
  linuxCapabilities?: boolean;
  /**
   * Compile on the calling thread with this function (e.g. compilePolicy from ./compile.ts)
   * instead of in the compile process. Only for callers whose thread serves nobody else.
   */
  compile?: CompileFn;
  /** Limits of the compile process (time per compile, heap). */
  compileProcess?: Partial<CompileProcessOptions>;
  /**
   * Start the compile launcher now, before anything else, rather than at the first compile: the
   * daemon, so that its main thread forks while its process is small, and never for an upload.
   */
  startCompileLauncher?: boolean;
  /**
   * Fuel of the speculative run on the calling thread that precedes the worker (speculative/);
   * 0 sends every evaluation straight to a worker. Default DEFAULT_INLINE_FUEL.
   */
  inlineFuel?: number;
  /** Time budget of the speculative runs of one turn of the event loop (ms); default 2. */
  inlineBudgetMs?: number;
  /** The speculative runs' clock (ms of this thread's CPU time); default the thread CPU clock
   * (os/thread-cpu-clock.ts). A seam for tests. */
  clock?: () => number;
  /**
   * Count the workers' deadline in the CPU time of the worker's thread, under a wall-clock cap
   * (worker/cpu-deadline.ts): the simulator, whose verdict must not depend on how busy the machine
   * is. None: wall-clock, the daemon's (what a client waits for).
   */
  workerCpuDeadline?: CpuDeadlineClocks;
  /** A speculative run (or the making of a spare instance) held the calling thread past the budget. */
  onInlineOverrun?: (sha256: string, spentMs: number) => void;
  /** The calling thread's budget is renewed after a turn that had run too low for a speculative
   * run: evaluations startsInline() turned away for that could start there now. */
  onInlineBudgetRenewed?: () => void;
  /**
   * The effects journal (the daemon's): the intent of every effect is written there before it
   * acts, by this thread or a worker, for evaluations given a `context`. None: not journaled.
   */
  effectsJournal?: EffectJournal;
  /** Test seams: faults at the moments that are hard to reach otherwise. */
  seams?: EngineSeams;
}

export interface EngineSeams {
  /** What the worker is given to replay instead of the speculative run's tape (same length). */
  replayTape?: (tape: TapeEntry[]) => TapeEntry[];
  /** Workers exit right after an effect, as a crash at the worst moment would. */
  exitWorkerAfterEffect?: boolean;
}

const NO_OPTIONS: EvaluateOptions = {};

/** An evaluation that failed in the engine itself, e.g. a CapabilitySpec that cannot be cloned to
 * the worker (before anything ran). */
const failed = (err: unknown): Outcome =>
  denyOutcome('host-error', `evaluation failed in the engine: ${err instanceof Error ? err.message : String(err)}`);

export class Engine implements PolicyEngine {
  readonly limits: Readonly<EngineLimits>;
  readonly #pool: WorkerPool;
  readonly #compile: CompileFn;
  readonly #compiler: CompileProcess | undefined;
  readonly #policies = new Map<string, CompiledPolicy>();
  readonly #inline: InlineRunner | undefined;
  /** Linux evaluations may start on this thread too (an engine without Linux capabilities never acts here). */
  readonly #linuxInline: boolean;
  readonly #journal: EffectJournal | undefined;
  readonly #seams: EngineSeams;
  /** Loads the Linux capabilities on this thread too (speculative runs); `#linuxLoaded` once done. */
  #linuxHere: Promise<void> | undefined;
  #linuxLoaded = false;
  #closed = false;

  constructor(options: EngineOptions = {}) {
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...options.limits });
    this.#compiler = options.compile === undefined ? new CompileProcess(options.compileProcess) : undefined;
    if (options.startCompileLauncher === true) void this.#compiler?.start();
    this.#compile = options.compile ?? ((bytes, limits) => this.#compiler!.compile(bytes, limits));
    const inlineFuel = options.inlineFuel ?? DEFAULT_INLINE_FUEL;
    this.#linuxInline = options.linuxCapabilities !== false;
    // Simulated evaluations take the speculative run too: the simulator answers as the daemon.
    this.#inline =
      inlineFuel > 0
        ? new InlineRunner({
            sliceFuel: inlineFuel,
            ...(options.inlineBudgetMs !== undefined ? { budgetMs: options.inlineBudgetMs } : {}),
            ...(options.clock !== undefined ? { now: options.clock } : {}),
            ...(options.onInlineOverrun !== undefined ? { onOverrun: options.onInlineOverrun } : {}),
            ...(options.onInlineBudgetRenewed !== undefined ? { onBudgetRenewed: options.onInlineBudgetRenewed } : {}),
          })
        : undefined;
    this.#journal = options.effectsJournal;
    this.#seams = options.seams ?? {};
    this.#pool = new WorkerPool({
      size: options.workers ?? Math.min(2, availableParallelism()),
      linuxCapabilities: options.linuxCapabilities ?? true,
      ...(this.#journal !== undefined ? { effectsJournal: this.#journal } : {}),
      ...(this.#seams.exitWorkerAfterEffect === true ? { exitAfterEffect: true } : {}),
      ...(options.workerCpuDeadline !== undefined ? { cpuDeadline: options.workerCpuDeadline } : {}),
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
      return {
        ok: false,
        kind: 'invalid-module',
        message: `compiling the policy failed: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    if (result.ok) this.load(result.policy);
    return result;
  }

  /** Makes an already compiled policy (e.g. recompiled at start-up) available to the workers. */
  load(policy: CompiledPolicy): void {
    if (this.#closed) throw new Error('Engine.load: the engine is closed');
    this.#policies.set(policy.sha256, policy);
    this.#pool.load(policy.sha256, { module: policy.module, limits: policy.limits });
    this.#inline?.load(policy.sha256, policy.module, policy.limits, policy.instantiation);
  }

  policy(sha256: string): CompiledPolicy | undefined {
    return this.#policies.get(sha256);
  }

  /**
   * One decision. Every outcome lists every capability call that reached the kernel, whatever
   * stopped the run (deadline, a worker's death, a replay that diverged); and when the decision
   * is not allow, every set-memlock that acted is undone, newest first, each call saying how.
   */
  evaluate(
    sha256: string,
    request: PolicyRequest,
    capabilities: CapabilitySpec,
    options: EvaluateOptions = NO_OPTIONS,
  ): Promise<Outcome> {
    const outcome = this.evaluateHere(sha256, request, capabilities, options);
    return outcome instanceof Promise ? outcome : Promise.resolve(outcome);
  }

  evaluateHere(
    sha256: string,
    request: PolicyRequest,
    capabilities: CapabilitySpec,
    options: EvaluateOptions = NO_OPTIONS,
  ): Outcome | Promise<Outcome> {
    let run: Outcome | Promise<Outcome>;
    try {
      run = this.#run(sha256, request, capabilities, options);
    } catch (err) {
      return failed(err);
    }
    // Decided on this thread (most decisions are): no promise on the way.
    if (!(run instanceof Promise)) return this.#settled(run, capabilities);
    return run.then(
      (o) => this.#settled(o, capabilities),
      (err: unknown) => failed(err),
    );
  }

  /** The outcome, its effects undone unless it allows: undone here and now once the capabilities
   * are loaded on this thread (a promise only before that, or when the undo threw). A denied
   * decision that acted is then settled on this thread like an allowed one: no promise, no
   * microtask between its undo and its commit (each was ~3 promises and their reactions). */
  #settled(outcome: Outcome, capabilities: CapabilitySpec): Outcome | Promise<Outcome> {
    if (outcome.decision === 'allow' || capabilities.kind !== 'linux' || !outcome.capabilityCalls.some(hasEffect))
      return outcome;
    const undone = this.#undoHere(outcome.capabilityCalls);
    if (undone instanceof Promise) return undone.then((capabilityCalls) => ({ ...outcome, capabilityCalls }));
    return { ...outcome, capabilityCalls: undone };
  }

  /** Clears the intents of `calls` from the effects journal: their decision is recorded. */
  releaseIntents(calls: readonly CapabilityCall[]): void {
    const journal = this.#journal;
    if (journal === undefined) return;
    for (const c of calls)
      if (c.op === 'set-memlock' && c.effect?.journalSlot !== undefined) journal.clear(c.effect.journalSlot);
  }

  /** Undoes the effects among `calls`, newest first (a decision that will not be allow). */
  undo(calls: readonly CapabilityCall[]): Promise<CapabilityCall[]> {
    const undone = this.#undoHere(calls);
    return undone instanceof Promise ? undone : Promise.resolve(undone);
  }

  /** undo(), with the calls themselves when it is done before this returns. */
  #undoHere(calls: readonly CapabilityCall[]): CapabilityCall[] | Promise<CapabilityCall[]> {
    if (!calls.some(hasEffect)) return [...calls];
    // Once the capabilities are loaded on this thread (the first speculative run loads them), no
    // await on the way: every denied decision that acted comes here.
    if (!this.#linuxLoaded) return this.#loadLinuxHere().then(() => undoEffects(calls, undoMemlockEffect));
    try {
      return undoEffects(calls, undoMemlockEffect);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The outcome as a value when the speculative run decided it, else a promise of it; may throw. */
  #run(
    sha256: string,
    request: PolicyRequest,
    capabilities: CapabilitySpec,
    options: EvaluateOptions,
  ): Outcome | Promise<Outcome> {
    if (this.#closed) return denyOutcome('host-error', 'the engine is closed');
    const policy = this.#policies.get(sha256);
    if (policy === undefined)
      return denyOutcome('host-error', `no compiled policy with sha256 ${sha256}: compile or load it first`);
    const deadlineMs = options.deadlineMs ?? policy.limits.deadlineMs;
    if (!(deadlineMs > 0))
      return denyOutcome('host-error', `deadline must be a positive number of milliseconds, got ${deadlineMs}`);
    // The decision's context goes with the intents of its effects (only when they are journaled):
    // written into the journal by this thread, or as JSON for a worker, made before the job leaves.
    const ctx = this.#journal !== undefined ? options.context : undefined;
    if (this.#inline !== undefined && (capabilities.kind === 'simulated' || this.#linuxInline) && !options.noInline) {
      if (capabilities.kind === 'linux' && !this.#linuxLoaded)
        return this.#loadLinuxHere().then(() => this.#run(sha256, request, capabilities, options));
      // The speculative runs' back-off is kept per policy and requester (the VM the capabilities
      // are scoped to), so one VM's costly requests never send another's to the workers.
      const requester = capabilities.kind === 'linux' ? capabilities.scope.identity.uuid : '';
      const { attempt, continueOn } = this.#tryInline(sha256, request, capabilities, ctx, requester);
      if (attempt.kind === 'decided') return attempt.outcome;
      if (attempt.kind === 'continue') {
        const job = this.#job(sha256, request, continueOn ?? capabilities, ctx);
        return this.#continueInWorker(attempt, job, deadlineMs);
      }
    }
    return this.#pool.run(this.#job(sha256, request, capabilities, ctx), deadlineMs);
  }

  /** The evaluation as a worker takes it: the context, if any, as JSON. */
  #job(sha256: string, request: PolicyRequest, capabilities: CapabilitySpec, ctx?: DecisionContext): EvaluateJob {
    return { sha256, request, capabilities, ...(ctx !== undefined ? { context: decisionContextJson(ctx) } : {}) };
  }

  /** A speculative run that needs more than its slice, run again in a worker that replays its calls. */
  async #continueInWorker(
    attempt: Extract<InlineResult, { kind: 'continue' }>,
    job: EvaluateJob,
    deadlineMs: number,
  ): Promise<Outcome> {
    const left = deadlineMs - attempt.spentUs / 1000;
    const replay = this.#seams.replayTape?.(attempt.tape) ?? attempt.tape;
    const o =
      left > 0
        ? wholeDeadline(await this.#pool.run({ ...job, replay }, left), left, deadlineMs, 'in the first run')
        : denyOutcome('timeout', `the ${deadlineMs} ms deadline passed during the first run`);
    // The first run's calls reached the kernel on this thread; the worker's outcome starts
    // with their replay (as far as it got), then its own calls.
    const calls = [
      ...tapeCalls(attempt.tape),
      ...o.capabilityCalls.slice(Math.min(attempt.tape.length, o.capabilityCalls.length)),
    ];
    // Both runs' dropped memories are the garbage collector's work, caused by this request.
    const droppedMemoryBytes = (o.droppedMemoryBytes ?? 0) + attempt.droppedMemoryBytes;
    return {
      ...o,
      durationUs: o.durationUs + attempt.spentUs,
      capabilityCalls: calls,
      ...(droppedMemoryBytes > 0 ? { droppedMemoryBytes } : {}),
    };
  }

  async #loadLinuxHere(): Promise<void> {
    await (this.#linuxHere ??= loadLinuxCapabilities());
    this.#linuxLoaded = true;
  }

  /**
   * The speculative run, and the capabilities a continuation in a worker runs on. The real
   * host's effects are in the kernel, where the worker's replayed run finds them: it goes on
   * with the same spec. A simulated host keeps its limits per run, so the continuation gets
   * the world as the first run left it (SimulatedCapabilities.worldNow). That is the real
   * host's situation exactly: the worker answers the taped calls from the tape without acting
   * (divergence denies as on Linux), and its live calls find the first run's effects in place.
   * Re-applying the taped calls to a fresh copy in the worker would be a replay path the daemon
   * never takes, and the world is plain data that crosses to the worker anyway.
   * `continueOn` undefined: the same spec (no object is made for it: this is every decision's path).
   */
  #tryInline(
    sha256: string,
    request: PolicyRequest,
    spec: CapabilitySpec,
    context: DecisionContext | undefined,
    requester: string,
  ): { attempt: InlineResult; continueOn?: CapabilitySpec } {
    if (spec.kind === 'simulated') {
      let simulated: ReturnType<typeof createSimulatedCapabilities>;
      try {
        simulated = createSimulatedCapabilities(spec.world);
      } catch {
        return { attempt: { kind: 'skipped' } }; // the worker reports why
      }
      const attempt = this.#inline!.run(sha256, request, simulated, requester);
      if (attempt.kind !== 'continue') return { attempt };
      return { attempt, continueOn: { kind: 'simulated', world: simulated.worldNow() } };
    }
    return { attempt: this.#tryLinuxInline(sha256, request, spec, context, requester) };
  }

  #tryLinuxInline(
    sha256: string,
    request: PolicyRequest,
    spec: CapabilitySpec,
    context: DecisionContext | undefined,
    requester: string,
  ): InlineResult {
    let capabilities: Capabilities;
    try {
      const effects =
        context !== undefined && this.#journal !== undefined
          ? effectSink({ journal: this.#journal, context })
          : undefined;
      capabilities = createCapabilities(spec, effects);
    } catch {
      return { kind: 'skipped' }; // the worker reports why it cannot build them either
    }
    return this.#inline!.run(sha256, request, capabilities, requester);
  }

  startsInline(sha256: string, requester: string): boolean {
    // As #run decides, with the capabilities loaded on this thread (until then it waits for them).
    return (
      this.#linuxInline && this.#linuxLoaded && !this.#closed && this.#inline?.attempts(sha256, requester) === true
    );
  }

  /** The longest turn of guest work (speculative runs, spare instances) on this thread since the
   * last call: its CPU time and the wall time it spanned, in ms; zeros without speculative runs. */
  takeLongestInlineTurn(): GuestTurn {
    return this.#inline?.takeLongestTurn() ?? { cpuMs: 0, wallMs: 0 };
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
    await Promise.all([this.#pool.close(), this.#compiler?.close()]);
  }
}
