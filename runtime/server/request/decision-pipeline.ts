// One privileged request, from kernel identity to committed audit record:
//   peer pid -> requester VM (none: deny unknown-requester) -> binding (none: deny no-policy)
//   -> fair scheduler -> engine.evaluate scoped to the requester's VM -> audit commit -> answer.
// Every path that produces a decision audits it before returning. The decision id exists before
// the policy runs: the intent of each effect names it (effects/), so a decision lost to a crash
// is still found and audited at the restart. A decision whose record cannot be committed is
// not an allow: its effects are undone.
import type { Operation, PolicyRequest } from '../../contract/types.ts';
import type { PolicyEngine } from '../../engine/api.ts';
import type { CapabilitySpec } from '../../capabilities/spec.ts';
import type { RegisteredVm } from '../../identity/vm.ts';
import type { NewAuditRecord } from '../../store/audit-store.ts';
import type { DecisionContext } from '../../effects/effect-intent.ts';
import { auditCall } from '../../effects/audit-call.ts';
import { AUDIT_RECORD_SCHEMA_VERSION, formatBytes, type Binding, type DecisionResponse } from '../../wire/index.ts';
import type { AuditWriter, CommitWaiter } from '../audit/audit-writer.ts';
import type { Requester, TargetTranslation } from '../../identity/target-translation.ts';
import type { IdentityDeps, PeerCredentials } from '../deps.ts';
import type { DaemonMetrics } from '../metrics/daemon-metrics.ts';
import type { PolicyService } from '../policies/policy-service.ts';
import type { FairScheduler, StartsInline } from '../scheduler/fair-scheduler.ts';
import type { VmRegistry } from '../state/vm-registry.ts';
import { denyOutcome } from '../../engine/deny-outcome.ts';
import { droppedMemoryCostMs } from '../../engine/dropped-memory-cost.ts';
import { DAEMON_DENY_DETAIL, type Decided } from './daemon-deny.ts';
import { newDecisionId } from './decision-id.ts';
import { isoTime } from './iso-time.ts';
import { DEFAULT_IDENTITY_TTL_MS, RequesterVmCache } from './requester-vm-cache.ts';

export interface PipelineDeps {
  engine: PolicyEngine;
  policies: PolicyService;
  vms: VmRegistry;
  identity: IdentityDeps;
  scheduler: FairScheduler;
  audit: AuditWriter;
  metrics: DaemonMetrics;
  /** Whole-request deadline (queueing + evaluation). */
  requestDeadlineMs: number;
  /** The engine's per-evaluation deadline; an evaluation gets min(this, time left). */
  evaluationDeadlineMs: number;
  /** What one MiB of wasm memory a run dropped costs after it (ms), charged to the VM that asked; default DROPPED_MEMORY_MS_PER_MIB. */
  droppedMemoryMsPerMiB?: number;
  /** How long a connection's resolved VM is reused (within one registry generation). */
  identityTtlMs?: number;
  /** A decision whose record could not be committed (its effects were undone): for the log. */
  onUnaudited?(record: NewAuditRecord, err: unknown): void;
  /** No evaluation is open any more (none running, none waiting for its commit): no intent is pending. */
  onIdle?(): void;
}

export type PipelineResult =
  | { ok: true; response: DecisionResponse }
  | {
      ok: false;
      reason:
        | 'queue-full'
        | 'vm-queue-full'
        | 'closed'
        | 'audit-failed'
        | 'policy-not-ready'
        | 'audit-backlog'
        | 'vm-rate-limited';
      message: string;
      /** vm-rate-limited: seconds until the VM's budget is positive again (at least 1). */
      retryAfterS?: number;
    };

/** A request held back for its VM's share until its deadline passed: not evaluated, not audited. */
interface RateLimited {
  rateLimited: true;
  retryAfterMs: number;
}

const rateLimited = (retryAfterMs: number): RateLimited => ({ rateLimited: true, retryAfterMs });

type LinuxCapabilitySpec = Extract<CapabilitySpec, { kind: 'linux' }>;

/**
 * A request from its arrival to its answer: one object of one shape, whose fields are filled in
 * as it advances (no copy of it is made on the way: this is every decision's path). It holds the
 * result decide() returns (or its promise), settled once, at the end, and it is the audit writer's waiter for its
 * record: between arrival and answer no promise is made per step (each cost a promise, its
 * reaction and two closures, ~150-300 bytes, and one that resolved with another promise twice that).
 */
class PendingRequest implements CommitWaiter {
  /** The promise of its result, made only when it is asked for before the result is known (a
   * decision settled on this thread is answered with the result itself: no promise, no
   * resolving functions). */
  #promise: Promise<PipelineResult> | undefined = undefined;
  #resolve: ((r: PipelineResult) => void) | undefined = undefined;
  #reject: ((err: unknown) => void) | undefined = undefined;
  /** Settled: with `value`, or failed with `error`. The first settlement wins, as a promise's. */
  #settled = false;
  #failed = false;
  #value: PipelineResult | undefined = undefined;
  #error: unknown = undefined;
  /** The requester's VM; null where it was denied before it was known. */
  vm: RegisteredVm | null = null;
  /** The binding that decides it; null where it was denied before one was found. */
  binding: Readonly<Binding> | null = null;
  /**
   * Set by evaluate() when the target was translated from the requester's pid namespace: the
   * daemon's pid of it and that process's start time, which the capabilities act on and the
   * audit names.
   */
  pinned: { pid: number; startTime: number } | undefined = undefined;
  /** An evaluation was started for it and is counted open until its record is committed (or failed to be). */
  evaluating = false;
  /** What is committed: the outcome and its record (set by commit()). */
  outcome: Decided | null = null;
  record: NewAuditRecord | null = null;

  constructor(
    private readonly pipeline: DecisionPipeline,
    /** Made before the policy runs: the intent of each effect names it. */
    readonly decisionId: string,
    readonly peer: PeerCredentials,
    readonly operation: Operation,
    /** As the client sent it: in the requester's pid namespace. */
    readonly targetPid: number,
    readonly bytes: bigint,
    /** `bytes` in the wire form (formatBytes), as the record and the intents' context carry it. */
    readonly bytesText: string,
    /** Epoch ms: the request's deadline and its record's time count from it. */
    readonly startedAt: number,
    /** `startedAt` as ISO 8601: the record's time, and its intents'. */
    readonly time: string,
    /** performance.now() at arrival: the request's total time counts from it. (A number: the
     * bigints of process.hrtime.bigint() were seven heap objects per decision.) */
    readonly t0: number,
  ) {}

  resolve(r: PipelineResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#value = r;
    this.#resolve?.(r);
  }

  reject(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#failed = true;
    this.#error = err;
    this.#reject?.(err);
  }

  /** The result when it is known already, else its promise. */
  here(): PipelineResult | Promise<PipelineResult> {
    if (this.#settled) return this.#failed ? Promise.reject(this.#error) : this.#value!;
    this.#promise ??= new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    return this.#promise;
  }

  committed(): void {
    this.pipeline.onCommitted(this);
  }

  commitFailed(err: unknown): void {
    this.pipeline.onCommitFailed(this, err);
  }
}

const untranslated = (err: unknown): Decided =>
  denyOutcome(
    'unknown-target',
    `the target could not be translated from the requester's pid namespace: ${err instanceof Error ? err.message : String(err)}`,
  );

export class DecisionPipeline {
  readonly requesterVms: RequesterVmCache;
  private readonly identityTtlMs: number;
  /** Per connection: the requester as translations see it (they keep its NSpid in it). */
  private readonly requesters = new WeakMap<PeerCredentials, Requester>();
  /** Evaluations started and not yet committed (or failed to commit). */
  private open = 0;
  private readonly contextPolicies = new WeakMap<Binding, NonNullable<DecisionContext['policy']>>();
  // Made once and shared by every decision they describe (frozen: records and contexts only read them).
  private readonly recordPolicies = new WeakMap<Binding, NonNullable<NewAuditRecord['policy']>>();
  private readonly peerIds = new WeakMap<PeerCredentials, NewAuditRecord['requester']>();
  /** Per binding: whether a VM's evaluation of it starts on this thread now (the scheduler's key is
   * the VM's uuid, the engine's requester too); one function per binding, not one per decision. */
  private readonly inlineProbes = new WeakMap<Binding, StartsInline>();
  /** A VM's capabilities when no target was pinned (most decisions). */
  private readonly unpinned = new WeakMap<RegisteredVm, LinuxCapabilitySpec>();

  constructor(private readonly d: PipelineDeps) {
    this.identityTtlMs = d.identityTtlMs ?? DEFAULT_IDENTITY_TTL_MS;
    this.requesterVms = new RequesterVmCache(d.identity, d.vms, this.identityTtlMs);
  }

  /** Evaluations started and not yet committed: while there are none, no effect is under way. */
  get openDecisions(): number {
    return this.open;
  }

  /**
   * `waitedMs`: how long the request already waited for its turn on the main thread; its
   * deadline and time count from its arrival. Every decision runs this, so its steps are chained
   * promises rather than awaits (an await cost ~3x the bytes of a then, measured on Node 20).
   */
  decide(
    peer: PeerCredentials,
    operation: Operation,
    targetPid: number,
    bytes: bigint,
    waitedMs = 0,
  ): Promise<PipelineResult> {
    const result = this.decideHere(peer, operation, targetPid, bytes, waitedMs);
    return result instanceof Promise ? result : Promise.resolve(result);
  }

  /** decide(), with the result itself when it is known before this returns (a decision settled
   * on this thread, committed at once): the request path answers it without a promise. */
  decideHere(
    peer: PeerCredentials,
    operation: Operation,
    targetPid: number,
    bytes: bigint,
    waitedMs = 0,
  ): PipelineResult | Promise<PipelineResult> {
    const startedAt = Date.now() - Math.round(waitedMs);
    const t0 = performance.now() - waitedMs;

    // Back-pressure: every decision adds a record, and the audit is not moving them into the
    // database as fast as they come (or it refuses writes). Refused before anything is done or
    // recorded, so that the backlog, the memory it holds and each turn's work stay bounded.
    if (this.d.audit.backlogged) {
      this.d.metrics.rejected.inc({ reason: 'audit-backlog' });
      return {
        ok: false,
        reason: 'audit-backlog',
        message: `${this.d.audit.backlog} audit records wait to be written to the database: the daemon takes no new request until it has caught up`,
      };
    }
    const r = new PendingRequest(
      this,
      newDecisionId(startedAt),
      peer,
      operation,
      targetPid,
      bytes,
      formatBytes(bytes),
      startedAt,
      isoTime(startedAt),
      t0,
    );

    // The pid was read at connect time: if that process has gone, the pid may name another one now.
    const requester = this.requesterVms.resolve(peer);
    if (requester.kind === 'gone')
      return this.commit(r, denyOutcome('unknown-requester', DAEMON_DENY_DETAIL.exited(peer.pid)));
    if (requester.kind === 'unknown')
      return this.commit(r, denyOutcome('unknown-requester', DAEMON_DENY_DETAIL.notInVm(peer.pid)));
    const vm = requester.vm;
    r.vm = vm;

    const binding = this.d.policies.bindings.get(operation);
    if (binding === null) return this.commit(r, denyOutcome('no-policy', DAEMON_DENY_DETAIL.nothingBound(operation)));
    r.binding = binding;
    // A revision that may not run under today's trust roots is never evaluated.
    if (binding.suspended) return this.commit(r, denyOutcome(binding.suspended.reason, binding.suspended.message));

    // Right after a start, the bound revision may still be compiling: wait for it within the deadline.
    const loading = this.d.policies.whenLoaded(binding.sha256);
    if (loading !== undefined) return this.whenLoaded(r, vm, binding, loading);
    return this.schedule(r, vm, binding);
  }

  /** Waits within the request's deadline for the bound revision to be compiled, then schedules it. */
  private async whenLoaded(
    r: PendingRequest,
    vm: RegisteredVm,
    binding: Readonly<Binding>,
    loading: Promise<unknown>,
  ): Promise<PipelineResult> {
    const left = this.timeLeft(r);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Math.max(0, left))));
    const ready = await Promise.race([loading, late]);
    clearTimeout(timer);
    if (ready === 'late') {
      this.d.metrics.rejected.inc({ reason: 'policy-not-ready' });
      return {
        ok: false,
        reason: 'policy-not-ready',
        message: `policy ${binding.policy} revision ${binding.revision} is still being compiled (the daemon has just started)`,
      };
    }
    return this.schedule(r, vm, binding);
  }

  /** The memory the policy dropped is collected after the answer, on threads no slot holds: the VM pays for it. */
  private readonly leftBehindMs = (o: Decided | RateLimited): number =>
    'rateLimited' in o ? 0 : droppedMemoryCostMs(o.droppedMemoryBytes, this.d.droppedMemoryMsPerMiB);

  /** The evaluation under the VM's scheduler slot, then its audit commit. An evaluation decided
   * on this thread settles as it runs (no promise on the way: scheduler.submitHere). */
  private schedule(
    r: PendingRequest,
    vm: RegisteredVm,
    binding: Readonly<Binding>,
  ): PipelineResult | Promise<PipelineResult> {
    this.d.policies.acquire(binding);
    const admission = this.d.scheduler.submitHere<Decided | RateLimited>(
      vm.identity.uuid,
      () => {
        if (this.timeLeft(r) <= 0) return this.waitedTooLong();
        r.evaluating = true;
        this.open++;
        return this.evaluate(r, vm, binding);
      },
      // Held back for the VM's share past the deadline: refused like a full queue, before anything is done.
      { deadlineMs: this.timeLeft(r), rateLimited },
      this.leftBehindMs,
      // Decided here at once: it needs no worker, so it waits for no worker's slot.
      this.inlineProbe(binding),
    );
    if (!admission.ok) {
      this.d.policies.release(binding);
      this.d.metrics.rejected.inc({ reason: admission.reason });
      return {
        ok: false,
        reason: admission.reason,
        message: admission.reason === 'closed' ? 'the daemon is shutting down' : 'too many requests are waiting',
      };
    }
    const result = admission.result;
    if (!(result instanceof Promise)) this.evaluated(r, vm, binding, result);
    else
      result.then(
        (outcome) => this.evaluated(r, vm, binding, outcome),
        (err: unknown) => {
          this.d.policies.release(binding);
          this.closeEvaluation(r);
          r.reject(err);
        },
      );
    return r.here();
  }

  private inlineProbe(binding: Binding): StartsInline | undefined {
    const engine = this.d.engine;
    if (engine.startsInline === undefined) return undefined;
    let probe = this.inlineProbes.get(binding);
    if (probe === undefined) {
      const { sha256 } = binding;
      probe = (vmUuid) => engine.startsInline!(sha256, vmUuid);
      this.inlineProbes.set(binding, probe);
    }
    return probe;
  }

  /** The evaluation's outcome (or its refusal for the VM's share): committed, or answered. */
  private evaluated(
    r: PendingRequest,
    vm: RegisteredVm,
    binding: Readonly<Binding>,
    outcome: Decided | RateLimited,
  ): void {
    this.d.policies.release(binding);
    if ('rateLimited' in outcome) {
      this.closeEvaluation(r);
      this.d.metrics.rejected.inc({ reason: 'vm-rate-limited' });
      const retryAfterS = Math.max(1, Math.ceil(outcome.retryAfterMs / 1000));
      return r.resolve({
        ok: false,
        reason: 'vm-rate-limited',
        message: `VM ${vm.identity.name} has used more than its share of the daemon (scheduler.vmShare) while other VMs were asking, and this request's deadline passed while it waited`,
        retryAfterS,
      });
    }
    this.commit(r, outcome);
  }

  /** Once the evaluation's record is committed (or failed to be): no intent of it is pending any
   * more. Before the answer goes out, so that onIdle runs first. */
  private closeEvaluation(r: PendingRequest): void {
    if (!r.evaluating) return;
    r.evaluating = false;
    if (--this.open === 0) this.d.onIdle?.();
  }

  private evaluate(r: PendingRequest, vm: RegisteredVm, binding: Binding): Decided | Promise<Decided> {
    // The client named its target in its own pid namespace; the policy and the capabilities work
    // in the daemon's. Done here, under the VM's scheduler slot, as it may search /proc (priced),
    // and before the policy runs, so each effect's intent, its undo and the audit name the
    // daemon's pid (and the pin's start time), never the one the client sent.
    const translate = this.d.identity.translateTargetPid;
    if (translate === undefined) return this.run(r, vm, binding);
    const peer = r.peer;
    if (peer.startTime === null) return denyOutcome('unknown-requester', DAEMON_DENY_DETAIL.exited(peer.pid));
    let requester = this.requesters.get(peer);
    if (requester === undefined) {
      requester = { pid: peer.pid, startTime: peer.startTime };
      this.requesters.set(peer, requester);
    }
    let translation: TargetTranslation | Promise<TargetTranslation>;
    try {
      translation = translate(requester, vm, r.targetPid);
    } catch (err) {
      return untranslated(err);
    }
    // Known without a search (most requests): no promise on the way.
    if (!(translation instanceof Promise)) return this.translated(r, vm, binding, translation);
    return translation.then((t) => this.translated(r, vm, binding, t), untranslated);
  }

  private translated(
    r: PendingRequest,
    vm: RegisteredVm,
    binding: Binding,
    translation: TargetTranslation,
  ): Decided | Promise<Decided> {
    if (translation.kind === 'refused') return denyOutcome('unknown-target', translation.detail);
    if (translation.kind === 'translated') r.pinned = { pid: translation.hostPid, startTime: translation.startTime };
    return this.run(r, vm, binding);
  }

  private run(r: PendingRequest, vm: RegisteredVm, binding: Binding): Decided | Promise<Decided> {
    // The translation may have searched /proc: what is left of the deadline is measured again.
    const left = this.timeLeft(r);
    if (left <= 0) return this.waitedTooLong();
    const { peer, pinned } = r;
    const request: PolicyRequest = {
      operation: r.operation,
      requesterPid: peer.pid,
      requesterUid: peer.uid,
      targetPid: pinned?.pid ?? r.targetPid,
      bytes: r.bytes,
    };
    // Targets found in the VM are trusted as long as the requester's own VM is (identityTtlMs).
    const capabilities = pinned === undefined ? this.unpinnedCapabilities(vm) : this.capabilitiesOf(vm, pinned);
    const context: DecisionContext = {
      decisionId: r.decisionId,
      time: r.time,
      requester: this.peerIdsOf(peer),
      vm: vm.identity,
      operation: r.operation,
      targetPid: r.targetPid,
      targetHostPid: pinned?.pid,
      bytes: r.bytesText,
      policy: this.contextPolicy(binding),
    };
    const options = { deadlineMs: Math.min(this.d.evaluationDeadlineMs, left), context };
    const engine = this.d.engine;
    return engine.evaluateHere !== undefined
      ? engine.evaluateHere(binding.sha256, request, capabilities, options)
      : engine.evaluate(binding.sha256, request, capabilities, options);
  }

  private capabilitiesOf(vm: RegisteredVm, pinned: PendingRequest['pinned']): LinuxCapabilitySpec {
    return Object.freeze({ kind: 'linux', scope: vm, recentMembersMs: this.identityTtlMs, pinned });
  }

  private unpinnedCapabilities(vm: RegisteredVm): LinuxCapabilitySpec {
    let c = this.unpinned.get(vm);
    if (c === undefined) {
      c = this.capabilitiesOf(vm, undefined);
      this.unpinned.set(vm, c);
    }
    return c;
  }

  /** The requester as records and contexts name it, one object per connection. */
  private peerIdsOf(peer: PeerCredentials): NewAuditRecord['requester'] {
    let ids = this.peerIds.get(peer);
    if (ids === undefined) {
      ids = Object.freeze({ pid: peer.pid, uid: peer.uid, gid: peer.gid });
      this.peerIds.set(peer, ids);
    }
    return ids;
  }

  /** The policy as the audit record names it, one object per binding. */
  private recordPolicy(binding: Binding): NonNullable<NewAuditRecord['policy']> {
    let p = this.recordPolicies.get(binding);
    if (p === undefined) {
      p = Object.freeze({
        name: binding.policy,
        revision: binding.revision,
        sha256: binding.sha256,
        keyId: binding.keyId,
      });
      this.recordPolicies.set(binding, p);
    }
    return p;
  }

  /** The policy as the decision's context names it: one object per binding, so that what is made
   * of it once (its JSON in the effects journal's intents) is made once. */
  private contextPolicy(binding: Binding): NonNullable<DecisionContext['policy']> {
    let p = this.contextPolicies.get(binding);
    if (p === undefined) {
      p = { name: binding.policy, revision: binding.revision, sha256: binding.sha256 };
      this.contextPolicies.set(binding, p);
    }
    return p;
  }

  /** What is left of the request's deadline (ms; <= 0: nothing). */
  private timeLeft(r: PendingRequest): number {
    return r.startedAt + this.d.requestDeadlineMs - Date.now();
  }

  private waitedTooLong(): Decided {
    return denyOutcome(
      'deadline',
      `the request waited ${this.d.requestDeadlineMs} ms for its turn on the main thread and an evaluation slot`,
    );
  }

  /** Writes the decision's record; the audit writer then calls back r (onCommitted, onCommitFailed). */
  private commit(r: PendingRequest, o: Decided): PipelineResult | Promise<PipelineResult> {
    const totalUs = Math.round((performance.now() - r.t0) * 1000);
    const binding = r.binding;
    // Optional fields are written undefined, not left out: one shape for every record (the JSON
    // is the same, JSON.stringify leaves undefined out). Stamped with its schema version first,
    // so the store writes it as it is (audit-store.ts: auditDoc).
    const record: NewAuditRecord = {
      schemaVersion: AUDIT_RECORD_SCHEMA_VERSION,
      decisionId: r.decisionId,
      time: r.time,
      requester: this.peerIdsOf(r.peer),
      vm: r.vm?.identity ?? null,
      operation: r.operation,
      targetPid: r.targetPid,
      targetHostPid: r.pinned?.pid,
      bytes: r.bytesText,
      policy: binding !== null ? this.recordPolicy(binding) : null,
      decision: o.decision,
      reason: o.reason,
      errorKind: o.errorKind,
      errorDetail: o.errorDetail,
      capabilityCalls: o.capabilityCalls.map(auditCall),
      logs: o.logs,
      fuelUsed: o.fuelUsed,
      durationUs: o.durationUs,
      totalUs,
    };
    r.outcome = o;
    r.record = record;
    this.d.audit.commit(record, r);
    return r.here();
  }

  /** The record of r is committed: its intents go, and the answer. (The audit writer's call, through r.) */
  onCommitted(r: PendingRequest): void {
    const o = r.outcome!;
    try {
      this.d.engine.releaseIntents?.(o.capabilityCalls);
    } catch (err) {
      return this.onCommitFailed(r, err);
    }
    let result: PipelineResult;
    try {
      result = this.answered(r, o, r.record!);
    } catch (err) {
      this.closeEvaluation(r);
      return r.reject(err);
    }
    this.closeEvaluation(r);
    r.resolve(result);
  }

  /** The record of r could not be committed (or its intents not released). (The audit writer's call, through r.) */
  onCommitFailed(r: PendingRequest, err: unknown): void {
    this.unaudited(r.record!, r.outcome!, err).then(
      (result) => {
        this.closeEvaluation(r);
        r.resolve(result);
      },
      (e: unknown) => {
        this.closeEvaluation(r);
        r.reject(e);
      },
    );
  }

  /** Not answered, so not an allow: what the policy did is undone, and the log says it all. */
  private async unaudited(record: NewAuditRecord, o: Decided, err: unknown): Promise<PipelineResult> {
    if (o.decision === 'allow' && this.d.engine.undo !== undefined) {
      record.capabilityCalls = (await this.d.engine.undo(o.capabilityCalls)).map(auditCall);
    }
    this.d.onUnaudited?.(record, err);
    return {
      ok: false,
      reason: 'audit-failed',
      message: `the decision could not be audited: ${(err as Error).message}`,
    };
  }

  private answered(r: PendingRequest, o: Decided, record: NewAuditRecord): PipelineResult {
    const binding = r.binding;
    const m = this.d.metrics;
    const policy = binding?.policy ?? '';
    m.decided(policy, o.decision, o.errorKind ?? '');
    if (binding) m.evaluationSeconds.observe(o.durationUs / 1e6, policy);
    m.requestSeconds.observe((performance.now() - r.t0) / 1000);
    const response: DecisionResponse = { decision: o.decision, reason: o.reason, decisionId: record.decisionId };
    if (o.errorKind !== undefined) response.errorKind = o.errorKind;
    return { ok: true, response };
  }
}
