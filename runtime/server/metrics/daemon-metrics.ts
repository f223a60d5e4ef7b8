// Prometheus metrics of one daemon, in its own registry (never prom-client's global one, so
// several daemons in one process, as in tests, do not collide).
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';
import { LeanHistogram } from './lean-histogram.ts';

export interface MetricSources {
  /** The longest turn of guest work on the main thread since the last call: its CPU time and the
   * wall time it spanned (ms). */
  longestGuestTurn?(): { cpuMs: number; wallMs: number };
  policiesLoaded(): number;
  vmsRegistered(): number;
  queued(): number;
  inFlight(): number;
  /** VMs whose queued requests wait for their share right now. */
  pacedVms?(): number;
  /** Requests read and waiting for their turn on the main thread (turn-queue.ts). */
  turnsQueued?(): number;
  /** VMs whose requests wait there for their share of the main thread right now. */
  turnsPacedVms?(): number;
  /** The main thread's work around one request outside its turn, as measured to charge VMs (ms). */
  turnOutsideMs?(): number;
  /** The longest a request waited for its turn on the main thread since the last call (ms). */
  longestTurnWait?(): number;
  /** Bindings denied because their revision may not run (signatures). */
  bindingsSuspended?(): number;
  /** 1 while the policy directory's latest contents are refused, 0 otherwise (absent: no directory). */
  policyDirectoryError?(): number;
  /** Audit records committed to the journal and not yet in the database. */
  auditBacklog?(): number;
  /** Frames of the database's write-ahead log not yet copied back (null: cannot be read). */
  walFramesWaiting?(): number | null;
  /** 1 while the WAL checkpoint worker runs and its last checkpoint succeeded, else 0. */
  walCheckpointerUp?(): number;
}

interface DecisionCount {
  labels: { policy: string; decision: string; error_kind: string };
  /** Decisions not yet added to the counter. */
  n: number;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  /** Counted through decided(), which every decision calls. */
  readonly decisions: Counter<'policy' | 'decision' | 'error_kind'>;
  readonly evaluationSeconds: LeanHistogram;
  readonly requestSeconds: LeanHistogram;
  /** decisions' counts since the last scrape, added to it when scraped (decided()). */
  readonly #decided = new Map<string, Map<string, Map<string, DecisionCount>>>();
  /** The same, in the order first counted (the order the counter first shows them in). */
  readonly #decidedInOrder: DecisionCount[] = [];
  readonly rejected: Counter<'reason'>;
  readonly vmPaced: Counter;
  readonly mainThreadPaced: Counter;
  readonly auditBatchSize: LeanHistogram;
  readonly auditCommitSeconds: LeanHistogram;
  readonly policyDirectoryReconciles: Counter<'result'>;
  readonly mainThreadOverruns: Counter<'policy'>;
  readonly walCheckpoints: Counter<'result'>;
  /** Delays of the event loop since the previous scrape. */
  readonly #loopDelay: IntervalHistogram;

  /** `eventLoopResolutionMs`: how often the event loop's delay is sampled (a stall is measured to within it). */
  constructor(sources: MetricSources, eventLoopResolutionMs = 5) {
    this.#loopDelay = monitorEventLoopDelay({ resolution: eventLoopResolutionMs });
    const registers = [this.registry];
    const decidedInOrder = this.#decidedInOrder;
    this.decisions = new Counter({
      name: 'capgate_decisions_total',
      help: 'Decisions by policy, decision and error kind (policy "" when no policy ran).',
      labelNames: ['policy', 'decision', 'error_kind'],
      registers,
      collect() {
        for (const c of decidedInOrder) {
          if (c.n === 0) continue;
          this.inc(c.labels, c.n);
          c.n = 0;
        }
      },
    });
    // The two histograms every decision observes: lean-histogram.ts (prom-client's text).
    this.evaluationSeconds = new LeanHistogram({
      name: 'capgate_evaluation_duration_seconds',
      help: 'Policy evaluation time in the engine.',
      labelName: 'policy',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.requestSeconds = new LeanHistogram({
      name: 'capgate_request_duration_seconds',
      help: 'Time from request received to decision committed to the audit log (queueing included).',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.rejected = new Counter({
      name: 'capgate_requests_rejected_total',
      help: "Requests refused before evaluation, not audited: 503 (queue-full, vm-queue-full, audit-backlog, policy-not-ready, closed; turn-deadline: waited past its deadline for its turn on the daemon's main thread) or 429 (vm-rate-limited).",
      labelNames: ['reason'],
      registers,
    });
    this.vmPaced = new Counter({
      name: 'capgate_vm_paced_total',
      help: "Times a VM's requests were held back because it had used its share (scheduler.vmShare) while other VMs were asking; each time lasts until one of them starts.",
      registers,
    });
    this.mainThreadPaced = new Counter({
      name: 'capgate_main_thread_paced_total',
      help: "Times a VM's requests were held in the main thread's turn queue because its requests had used its share of the daemon's main thread (scheduler.mainThreadShare: the HTTP, identity, decision and audit work of each) while other VMs were asking; each time lasts until one of them runs.",
      registers,
    });
    // Observed at every audit commit: a lone client's decisions are committed one by one.
    this.auditBatchSize = new LeanHistogram({
      name: 'capgate_audit_batch_records',
      help: 'Records per audit group commit.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    });
    this.auditCommitSeconds = new LeanHistogram({
      name: 'capgate_audit_commit_duration_seconds',
      help: 'Duration of one audit group commit.',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers,
    });
    this.policyDirectoryReconciles = new Counter({
      name: 'capgate_policy_directory_reconciles_total',
      help: 'Reads of the policy directory (policies.directory) that found a change, by result: applied, or refused (the last good state kept).',
      labelNames: ['result'],
      registers,
    });
    this.mainThreadOverruns = new Counter({
      name: 'capgate_main_thread_overruns_total',
      help: "Speculative policy runs (or instance makings) that held the daemon's main thread past its time budget, by policy.",
      labelNames: ['policy'],
      registers,
    });
    this.walCheckpoints = new Counter({
      name: 'capgate_wal_checkpoints_total',
      help: "Checkpoints of the database's write-ahead log by the checkpoint worker, by result: done, busy (some frames left for the next), failed.",
      labelNames: ['result'],
      registers,
    });
    const loop = this.#loopDelay;
    loop.enable();
    // One snapshot per scrape, taken by the first of the two gauges (collected in registration
    // order); then the histogram starts again, so each scrape sees the interval since the last.
    let snapshot = { max: 0, p99: 0 };
    new Gauge({
      name: 'capgate_event_loop_delay_max_seconds',
      help: 'Longest delay of the event loop (perf_hooks.monitorEventLoopDelay; to within metrics.eventLoopResolutionMs) since the previous scrape.',
      registers,
      collect() {
        snapshot = loop.count > 0 ? { max: loop.max / 1e9, p99: loop.percentile(99) / 1e9 } : { max: 0, p99: 0 };
        loop.reset();
        this.set(snapshot.max);
      },
    });
    new Gauge({
      name: 'capgate_event_loop_delay_p99_seconds',
      help: '99th percentile of the event loop delay since the previous scrape (taken with the max).',
      registers,
      collect() {
        this.set(snapshot.p99);
      },
    });
    const guest = sources.longestGuestTurn;
    if (guest !== undefined) {
      // One read per scrape, by the first gauge (registration order), as for the loop delay.
      let turn = { cpuMs: 0, wallMs: 0 };
      new Gauge({
        name: 'capgate_main_thread_guest_max_seconds',
        help: "The longest turn of policy code (speculative runs, instance making) on the main thread since the previous scrape, in the thread's CPU time (what the budget engine.inlineBudgetMs bounds).",
        registers,
        collect() {
          turn = guest();
          this.set(turn.cpuMs / 1000);
        },
      });
      new Gauge({
        name: 'capgate_main_thread_guest_max_wall_seconds',
        help: 'The wall time that same turn spanned: its CPU time plus the time the OS ran other threads meanwhile.',
        registers,
        collect() {
          this.set(turn.wallMs / 1000);
        },
      });
    }
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    };
    gauge('capgate_policies_loaded', 'Policy revisions compiled and loaded in the engine.', sources.policiesLoaded);
    gauge('capgate_vms_registered', 'VMs in the registry.', sources.vmsRegistered);
    gauge(
      'capgate_scheduler_queued',
      "Evaluations waiting to start: for a slot, their VM's cap (scheduler.perKeyInFlight) or its share.",
      sources.queued,
    );
    gauge(
      'capgate_scheduler_in_flight',
      'Evaluations holding a scheduler slot: off the main thread (in or waiting for a worker), or running on it where a slot was free.',
      sources.inFlight,
    );
    gauge(
      'capgate_scheduler_paced_vms',
      'VMs whose queued requests wait for their share (scheduler.vmShare) right now.',
      sources.pacedVms ?? (() => 0),
    );
    if (sources.turnsQueued)
      gauge(
        'capgate_main_thread_queued',
        "Requests read and waiting for their turn on the daemon's main thread (in fair order between VMs).",
        sources.turnsQueued,
      );
    if (sources.turnsPacedVms)
      gauge(
        'capgate_main_thread_paced_vms',
        "VMs whose requests wait in the main thread's turn queue for their share of it (scheduler.mainThreadShare) right now.",
        sources.turnsPacedVms,
      );
    const outside = sources.turnOutsideMs;
    if (outside)
      gauge(
        'capgate_main_thread_request_overhead_seconds',
        "The daemon's main-thread work around one request outside its turn (socket read, HTTP parse, audit commit, answer, their garbage), as measured lately to charge each VM its whole main-thread time toward scheduler.mainThreadShare.",
        () => outside() / 1000,
      );
    const turnWait = sources.longestTurnWait;
    if (turnWait)
      gauge(
        'capgate_main_thread_wait_max_seconds',
        "The longest a request waited for its turn on the daemon's main thread since the previous scrape.",
        () => turnWait() / 1000,
      );
    gauge(
      'capgate_bindings_suspended',
      'Bindings whose revision may not run under the trust roots (requests denied signature-*).',
      sources.bindingsSuspended ?? (() => 0),
    );
    if (sources.auditBacklog)
      gauge(
        'capgate_audit_backlog_records',
        'Audit records committed to the journal and not yet moved into the database (new requests are refused while it is too long).',
        sources.auditBacklog,
      );
    const wal = sources.walFramesWaiting;
    if (wal)
      gauge(
        'capgate_wal_frames_waiting',
        "Pages of the database's write-ahead log not yet checkpointed into the database (-1: unknown).",
        () => wal() ?? -1,
      );
    if (sources.walCheckpointerUp)
      gauge(
        'capgate_wal_checkpointer_up',
        '1 while the WAL checkpoint worker runs and its last checkpoint succeeded, else 0 (the daemon logs why).',
        sources.walCheckpointerUp,
      );
    if (sources.policyDirectoryError)
      gauge(
        'capgate_policy_directory_error',
        '1 while the latest contents of the policy directory are refused (the last good state is kept), else 0.',
        sources.policyDirectoryError,
      );
  }

  /**
   * Counts a decision in capgate_decisions_total. prom-client's inc() makes a label hash string
   * and objects each time; here a decision adds one to a count found through three maps, and
   * the counter takes the counts when it is scraped.
   */
  decided(policy: string, decision: string, errorKind: string): void {
    let byDecision = this.#decided.get(policy);
    if (byDecision === undefined) this.#decided.set(policy, (byDecision = new Map()));
    let byKind = byDecision.get(decision);
    if (byKind === undefined) byDecision.set(decision, (byKind = new Map()));
    let count = byKind.get(errorKind);
    if (count === undefined) {
      count = { labels: { policy, decision, error_kind: errorKind }, n: 0 };
      byKind.set(errorKind, count);
      this.#decidedInOrder.push(count);
    }
    count.n++;
  }

  /** Stops sampling the event loop. */
  close(): void {
    this.#loopDelay.disable();
  }
}
