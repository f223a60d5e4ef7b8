// Speculative decisions on the calling thread. A worker round trip costs two thread wake-ups
// (~100 µs on this VM) for a decision that itself takes ~25 µs, so the engine first runs the
// policy here, within a budget that bounds how long this thread can be held, by construction:
// - the budget is this thread's CPU time (os/thread-cpu-clock.ts), not wall time: the time the
//   OS gives other threads (a busy machine) is not the guest's, and must not push runs to the
//   workers when the machine is loaded (cpu-span.ts reads that clock, a system call, only when
//   the wall clock cannot settle the question);
// - guest code is bounded by the fuel slice (fuel is charged per expression, per 16 bytes of bulk
//   memory and per memory.grow), and the slice is sized so that it fits the budget at the worst
//   rate of CPU time per unit of fuel measured (WORST_NS_PER_FUEL); a run starts only when its
//   whole slice still fits in what is left of the turn's budget;
// - every host call pays fuel for what it costs the host (abi/host-call-prices.ts), and once per
//   CLOCK_CHECK_FUEL units of fuel a host call first checks the clock: past the time budget the
//   run stops there, before the call does anything (what fuel misprices, e.g. a garbage
//   collection or code run cold, is caught there);
// - making the instance is bounded by what the policy may declare (instantiation-cost.ts): a
//   policy over those bounds never runs here;
// - the budget is per turn of the event loop, shared by every run of that turn;
// - a run's memory never grows here: its maximum is its initial size, so a memory.grow is refused
//   and the run stops (at its next host call, before the call does anything, or when it returns;
//   abi/evaluation-state.ts). A memory that grew cannot be recycled (fresh-memory-pool.ts), and V8
//   frees a dropped one only in a full mark-compact of the isolate that made it, every few tens of
//   MiB, whose pause and platform-thread marking fuel does not price: measured with the isolation
//   bench's page-storm (1.375 MiB dropped a decision), this thread's isolate collected every few
//   seconds and another VM's p99 was 3x the control's (9x on one core), while in the workers the
//   same storm cost it nothing. So grown memories belong to the workers' isolates only.
// A run that needs more than the slice (fuel, time or memory), or hits this thread's smaller
// stack, is not an answer: the engine runs the policy again in a worker, with the full fuel and the
// wall-clock deadline, replaying the capability calls this run already made
// (capability-tape.ts) so their effects happen once. The worker's run is the decision then,
// exactly as if the policy had only ever run there. Policies that keep needing the worker, or
// whose runs here take longer than the budget, go straight there for a while (back-off).
// Back-off is kept per policy AND requester (the VM asking): one policy often serves every VM,
// and what a run costs depends on the request. Kept per policy alone, a hostile VM's costly
// requests sent the other VMs' requests of that policy to the workers (their skips were shared),
// and the other VMs' cheap runs ended the hostile VM's back-off.
import type { PolicyRequest } from '../../contract/types.ts';
import type { Capabilities } from '../../capabilities/capabilities.ts';
import type { TimeSlice } from '../abi/evaluation-state.ts';
import { isStackOverflow } from '../classify-failure.ts';
import { evaluatePrepared, type PreparedInstance } from '../evaluate-instance.ts';
import { FUEL_GLOBAL } from '../instrumentation-globals.ts';
import { InstanceFactory } from '../instance-factory.ts';
import { instantiatesInline, type InstantiationCost } from '../instantiation-cost.ts';
import type { EngineLimits } from '../limits.ts';
import type { Outcome } from '../outcome.ts';
import { recordingCapabilities, type TapeEntry } from './capability-tape.ts';
import { threadCpuClock } from '../../os/thread-cpu-clock.ts';
import { CpuSpan, type SpanClocks } from './cpu-span.ts';

/**
 * Default slice: the example policies use 25-40k fuel (two capability calls at their price, and
 * 2-6k of their own). 100k units of the cost model are well under a millisecond of this thread
 * in the worst case measured (see the engine's bench section).
 */
export const DEFAULT_INLINE_FUEL = 100_000;

/** Default time budget of the speculative runs of one turn of the event loop, in milliseconds. */
export const DEFAULT_INLINE_BUDGET_MS = 2;

/**
 * CPU time one unit of fuel may take on this thread, at worst, in ns. Measured on the 2-core VM
 * (Node 20, thread CPU time of 100k-fuel runs): tight loops, calls, call_indirect, bulk fills and
 * copies, grow(0) storms take 0.2-2 ns per unit warm and up to 3.3 on their first run (cold
 * code); host-call storms run colder still (up to ~20 ns per unit on a first run), which the
 * clock checks at host calls catch. So a 100k slice is at most 0.5 ms of guest code.
 */
export const WORST_NS_PER_FUEL = 5;

/** After a run that had to continue in a worker (or took longer than the budget), that many later
 * requests (of the same requester) skip the attempt (doubling up to this bound while it keeps happening). */
const MAX_BACKOFF = 64;

/** Requesters in back-off kept per policy; past it, the least recently run is forgotten (it starts afresh). */
export const MAX_BACKOFF_REQUESTERS = 1024;

export type InlineResult =
  | { kind: 'decided'; outcome: Outcome }
  /** Run it again in a worker, replaying `tape`; `spentUs` went into this attempt, which dropped
   * `droppedMemoryBytes` (Outcome.droppedMemoryBytes). */
  | { kind: 'continue'; tape: TapeEntry[]; spentUs: number; droppedMemoryBytes: number }
  /** Not attempted (policy unknown, not instrumented, too costly to instantiate here, backing
   * off, or this turn's budget is spent). */
  | { kind: 'skipped' };

export interface InlineRunnerOptions {
  /** Fuel of one speculative run. */
  sliceFuel: number;
  /** Time budget of the runs of one turn of the event loop (ms); default DEFAULT_INLINE_BUDGET_MS. */
  budgetMs?: number;
  /** Milliseconds of this thread's CPU time; default os/thread-cpu-clock.ts (performance.now where
   * it cannot be read). A seam for tests. */
  now?: () => number;
  /** CPU time one unit of fuel may take here, in ns (sizes the slice); default WORST_NS_PER_FUEL. */
  nsPerFuel?: number;
  /** Called when a run (or the making of a spare instance) held this thread past the budget. */
  onOverrun?: (sha256: string, spentMs: number) => void;
  /** Called at the end of a turn whose budget had run too low for a slice: runs turned away for
   * that (attempts() was false) could start here now. */
  onBudgetRenewed?: () => void;
}

/** A run's time slice: over once the run's span has taken `leftMs` of CPU time. One per runner,
 * reset for each run (runs on one thread never overlap). */
class SpanSlice implements TimeSlice {
  expired = false;
  growthRefused = false;
  constructor(
    readonly span: CpuSpan,
    private leftMs: number,
  ) {}

  /** The slice of a run starting now, with `leftMs` of the turn's budget. */
  restart(leftMs: number): this {
    this.span.restart();
    this.expired = false;
    this.growthRefused = false;
    this.leftMs = leftMs;
    return this;
  }

  over(): boolean {
    return this.span.over(this.leftMs);
  }
}

/** One requester's back-off from one policy's runs here. */
interface Backoff {
  backoff: number;
  skip: number;
  /** Runs in a row that took longer than the budget (a single one may be the OS's doing). */
  overruns: number;
}

interface InlinePolicy {
  sha256: string;
  limits: EngineLimits;
  instances: InstanceFactory;
  /** A fresh instance made after the previous decision, off the critical path. */
  spare: PreparedInstance | undefined;
  /** Requesters in back-off only (an entry back at rest is deleted), least recently run first. */
  backoffs: Map<string, Backoff>;
  unloaded: boolean;
  /** Its next spare instance is about to be made. */
  spareScheduled: boolean;
  /** The two hops to making its spare (InlineRunner.#afterRun), made once per policy: every
   * decision schedules them, and two closures each time cost ~0.1 KB. */
  readonly scheduleSpare: () => void;
}

/** The longest turn of guest work on this thread: its CPU time, and the wall time it spanned
 * (the difference is time the OS gave to other threads meanwhile). */
export interface GuestTurn {
  cpuMs: number;
  wallMs: number;
}

export class InlineRunner {
  readonly #sliceFuel: number;
  readonly #budgetMs: number;
  /** A run starts only while this much of the turn's budget is left: its slice at the worst rate. */
  readonly #sliceMs: number;
  readonly #clocks: SpanClocks;
  readonly #onOverrun: ((sha256: string, spentMs: number) => void) | undefined;
  readonly #onBudgetRenewed: (() => void) | undefined;
  readonly #policies = new Map<string, InlinePolicy>();
  /** Time this turn's runs have spent (CPU, and wall time); reset at the turn's check phase. */
  #turnSpentMs = 0;
  #turnWallMs = 0;
  /** The most time guest work took in one turn since takeLongestTurn() last read it. */
  #longest: GuestTurn = { cpuMs: 0, wallMs: 0 };
  #turnResetScheduled = false;
  /** The policy whose spare a run just asked for (#afterRun), for #spend to schedule. */
  #hopFor: InlinePolicy | undefined;
  /** The policy of the pending #hopThenReset. */
  #hopThenResetFor: InlinePolicy | undefined;
  /** A tape left empty by a run that decided, for the next run (a new array grew to 17 slots at its first call). */
  #spareTape: TapeEntry[] | undefined;
  /** The slice (and span) of the next run, taken out while a run has it; the span of spares. */
  #spareSlice: SpanSlice | undefined;
  #spareSpan: CpuSpan | undefined;
  /** Counters for tests and benchmarks (growthRefused: runs continued in a worker because their memory would have grown). */
  readonly stats = { decided: 0, continued: 0, skipped: 0, sliceExpired: 0, overBudget: 0, growthRefused: 0 };

  constructor(options: InlineRunnerOptions) {
    const { sliceFuel } = options;
    if (!Number.isSafeInteger(sliceFuel) || sliceFuel <= 0)
      throw new RangeError(`the inline fuel slice must be a positive safe integer, got ${sliceFuel}`);
    const budgetMs = options.budgetMs ?? DEFAULT_INLINE_BUDGET_MS;
    if (!(budgetMs > 0))
      throw new RangeError(`the inline time budget must be a positive number of milliseconds, got ${budgetMs}`);
    const nsPerFuel = options.nsPerFuel ?? WORST_NS_PER_FUEL;
    if (!(nsPerFuel > 0)) throw new RangeError(`the CPU time per unit of fuel must be positive, got ${nsPerFuel}`);
    // A slice the budget cannot hold at the worst rate is cut down to what it can.
    this.#sliceFuel = Math.max(1, Math.min(sliceFuel, Math.floor((budgetMs * 1e6) / nsPerFuel)));
    this.#sliceMs = (this.#sliceFuel * nsPerFuel) / 1e6;
    this.#budgetMs = budgetMs;
    const cpu = options.now ?? threadCpuClock();
    const wall = (): number => performance.now();
    // A test's clock is both: every span is measured on it alone.
    this.#clocks = cpu === null ? { cpu: wall, wall } : { cpu, wall: options.now ?? wall };
    this.#onOverrun = options.onOverrun;
    this.#onBudgetRenewed = options.onBudgetRenewed;
  }

  /** Makes the policy eligible here if it is instrumented and cheap enough to instantiate. */
  load(
    sha256: string,
    module: WebAssembly.Module,
    limits: EngineLimits,
    instantiation: InstantiationCost | undefined,
  ): void {
    this.unload(sha256);
    // Only instrumented modules can be held to a slice (uninstrumented ones exist in tests only).
    if (!WebAssembly.Module.exports(module).some((e) => e.name === FUEL_GLOBAL)) return;
    if (!instantiatesInline(instantiation)) return;
    // Memories that cannot grow. The compile step makes every module import its memory (only
    // hand-made test fixtures define their own, which this cannot cap).
    const instances = new InstanceFactory(module, { growable: false });
    const makeSpare = (): void => this.#makeSpare(p);
    const p: InlinePolicy = {
      sha256,
      limits,
      instances,
      spare: undefined,
      backoffs: new Map(),
      unloaded: false,
      spareScheduled: false,
      scheduleSpare: () => setImmediate(makeSpare),
    };
    this.#policies.set(sha256, p);
  }

  unload(sha256: string): void {
    const p = this.#policies.get(sha256);
    if (p !== undefined) p.unloaded = true;
    this.#policies.delete(sha256);
  }

  /** One attempt; never throws. `capabilities` are released before it returns. `requester` names
   * who asks (a VM's uuid; '' for one that has none): back-off is kept per policy and requester. */
  run(sha256: string, request: PolicyRequest, capabilities: Capabilities, requester = ''): InlineResult {
    const p = this.#policies.get(sha256);
    const left = this.#budgetMs - this.#turnSpentMs;
    const b = p?.backoffs.get(requester);
    if (p === undefined || (b !== undefined && this.#holdsBack(b)) || !this.#holdsSlice(left)) {
      this.stats.skipped++;
      capabilities.release?.();
      return { kind: 'skipped' };
    }
    // Taken out while the run has it: were a run ever to start inside another, it would get its own.
    const tape = this.#spareTape ?? [];
    this.#spareTape = undefined;
    const spare = this.#spareSlice;
    this.#spareSlice = undefined;
    const time = spare === undefined ? new SpanSlice(new CpuSpan(this.#clocks), left) : spare.restart(left);
    const span = time.span;
    const fuel = Math.min(this.#sliceFuel, p.limits.fuel);
    let outcome: Outcome;
    let spentMs = 0;
    let droppedBytes = 0;
    try {
      const prepared = p.spare ?? p.instances.prepare();
      p.spare = undefined;
      try {
        outcome = evaluatePrepared(prepared, request, recordingCapabilities(capabilities, tape), p.limits, {
          fuel,
          time,
        });
      } finally {
        capabilities.release?.();
        droppedBytes = this.#afterRun(p, prepared);
      }
    } finally {
      span.measure();
      spentMs = span.cpuMs;
      this.#spend(p, spentMs, span.wallMs);
    }
    const expired = time.expired;
    const growthRefused = time.growthRefused;
    const outOfFuel = fuel < p.limits.fuel && outcome.errorKind === 'fuel-exhausted';
    // The run is over: nothing reads its slice any more.
    this.#spareSlice = time;
    const sliceTooSmall = expired || outOfFuel || growthRefused;
    if (expired) this.stats.sliceExpired++;
    if (growthRefused) this.stats.growthRefused++;
    // Fuel, memory and stack say what the policy needs for this request, every time (it is
    // deterministic). Time also says how busy the machine was: one slow run can be a
    // preemption, two in a row is the policy.
    const overran = expired || spentMs > this.#budgetMs;
    const stackOverflow = isStackOverflow(outcome);
    const needsWorker = outOfFuel || growthRefused || stackOverflow;
    // A requester at rest that stays at rest (most runs) has no entry to update or make.
    if (b !== undefined || overran || needsWorker) {
      const back = b ?? { backoff: 0, skip: 0, overruns: 0 };
      back.overruns = overran ? back.overruns + 1 : 0;
      if (needsWorker || back.overruns >= 2) {
        back.backoff = Math.min(MAX_BACKOFF, Math.max(1, back.backoff * 2));
        back.skip = back.backoff;
      } else if (back.overruns === 0) {
        back.backoff = 0;
      }
      this.#keepBackoff(p, requester, back);
    }
    if (sliceTooSmall || stackOverflow) {
      this.stats.continued++;
      return { kind: 'continue', tape, spentUs: Math.round(spentMs * 1000), droppedMemoryBytes: droppedBytes };
    }
    this.stats.decided++;
    // Decided here: nothing reads the tape any more (the outcome lists the calls itself).
    while (tape.length > 0) tape.pop();
    this.#spareTape = tape;
    return { kind: 'decided', outcome: droppedBytes > 0 ? { ...outcome, droppedMemoryBytes: droppedBytes } : outcome };
  }

  /**
   * Whether run() would attempt this requester's run of the policy now: the policy runs here, the
   * requester is not held back from it, and what is left of the turn's budget holds a slice. Counts
   * nothing down (the scheduler asks before it starts a job: its answer decides whether the job
   * needs a worker's slot). The run may still have to continue in a worker.
   */
  attempts(sha256: string, requester: string): boolean {
    const p = this.#policies.get(sha256);
    if (p === undefined || !this.#holdsSlice(this.#budgetMs - this.#turnSpentMs)) return false;
    const b = p.backoffs.get(requester);
    return b === undefined || !this.#holding(b);
  }

  /** Whether what is left of the turn's budget (ms) holds a slice. */
  #holdsSlice(leftMs: number): boolean {
    return leftMs >= this.#sliceMs;
  }

  /** Whether a back-off keeps its requester off this thread now (changes nothing). */
  #holding(b: Backoff): boolean {
    return b.skip > 0;
  }

  /** Whether this requester's runs of the policy skip this thread now: as #holding, and it counts
   * a skip down. */
  #holdsBack(b: Backoff): boolean {
    const held = this.#holding(b);
    if (b.skip > 0) b.skip--;
    return held;
  }

  /** Keeps a requester's back-off while it holds anything, as the newest entry; one back at rest
   * is forgotten, and so is the least recently run past MAX_BACKOFF_REQUESTERS. */
  #keepBackoff(p: InlinePolicy, requester: string, b: Backoff): void {
    p.backoffs.delete(requester);
    if (b.backoff === 0 && b.skip === 0 && b.overruns === 0) return;
    if (p.backoffs.size >= MAX_BACKOFF_REQUESTERS) {
      const oldest = p.backoffs.keys().next().value;
      if (oldest !== undefined) p.backoffs.delete(oldest);
    }
    p.backoffs.set(requester, b);
  }

  /** The longest turn of guest work on this thread since the last call (ms). */
  takeLongestTurn(): GuestTurn {
    const longest = this.#longest;
    this.#longest = { cpuMs: 0, wallMs: 0 };
    return longest;
  }

  /**
   * Counts a run's time against this turn's budget, and reports a run past the budget. Schedules
   * the turn's reset and the first hop to the policy's spare (#afterRun) for this turn's check
   * phase: in one immediate when both are due (they would be adjacent in the queue, in this order;
   * every decision of a lone VM has both, and an immediate is ~0.15 KB of garbage).
   */
  #spend(p: InlinePolicy, ms: number, wallMs: number): void {
    this.#turnSpentMs += ms;
    this.#turnWallMs += wallMs;
    this.#noteTurn();
    const hop = this.#hopFor;
    this.#hopFor = undefined;
    const reset = !this.#turnResetScheduled;
    this.#turnResetScheduled = true;
    if (hop !== undefined && reset) {
      this.#hopThenResetFor = hop;
      setImmediate(this.#hopThenReset);
    } else if (hop !== undefined) setImmediate(hop.scheduleSpare);
    else if (reset) setImmediate(this.#resetTurn);
    if (ms > this.#budgetMs) {
      this.stats.overBudget++;
      this.#onOverrun?.(p.sha256, ms);
    }
  }

  readonly #resetTurn = (): void => {
    const wasShort = !this.#holdsSlice(this.#budgetMs - this.#turnSpentMs);
    this.#turnResetScheduled = false;
    this.#turnSpentMs = 0;
    this.#turnWallMs = 0;
    if (wasShort) this.#onBudgetRenewed?.();
  };

  readonly #hopThenReset = (): void => {
    const p = this.#hopThenResetFor;
    this.#hopThenResetFor = undefined;
    p?.scheduleSpare();
    this.#resetTurn();
  };

  /** Keeps the longest turn: by default the runs of this turn so far. */
  #noteTurn(cpuMs = this.#turnSpentMs, wallMs = this.#turnWallMs): void {
    if (cpuMs > this.#longest.cpuMs) this.#longest = { cpuMs, wallMs };
  }

  /**
   * The memory goes back to the pool at once: scrubbing it is a fill of its initial pages (a few
   * µs for the usual one page), cheaper than the new memory the next run would otherwise need
   * when several decisions run in one turn of the event loop. Instantiating the next spare
   * (~25 µs) waits until the answers of this turn are out.
   * Returns the bytes of the run's memory when the pool dropped it instead of recycling it.
   */
  #afterRun(p: InlinePolicy, used: PreparedInstance): number {
    const droppedBytes = p.instances.recycle(used);
    if (p.spareScheduled) return droppedBytes;
    p.spareScheduled = true;
    // Two hops: the first lands in this turn's check phase, where the audit commit and the
    // answer it releases are queued too; the second runs after them, in the next turn. The
    // first is scheduled by #spend, which the run calls right after this.
    this.#hopFor = p;
    return droppedBytes;
  }

  #makeSpare(p: InlinePolicy): void {
    p.spareScheduled = false;
    if (p.spare !== undefined || p.unloaded) return;
    let span = this.#spareSpan;
    this.#spareSpan = undefined;
    if (span === undefined) span = new CpuSpan(this.#clocks);
    else span.restart();
    p.spare = p.instances.prepare();
    span.measure();
    this.#spareSpan = span;
    const ms = span.cpuMs;
    const wallMs = span.wallMs;
    this.#noteTurn(ms, wallMs);
    if (ms > this.#budgetMs) {
      this.stats.overBudget++;
      this.#onOverrun?.(p.sha256, ms);
    }
  }
}
