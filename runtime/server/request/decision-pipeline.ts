// One privileged request, from kernel identity to committed audit record:
//   peer pid -> requester VM (none: deny unknown-requester) -> binding (none: deny no-policy)
//   -> fair scheduler -> engine.evaluate scoped to the requester's VM -> audit commit -> answer.
// Every path that produces a decision audits it before returning.
import type { Operation, PolicyRequest } from '../../contract/types.ts';
import type { PolicyEngine } from '../../engine/api.ts';
import type { Outcome } from '../../engine/outcome.ts';
import type { RegisteredVm } from '../../identity/vm.ts';
import type { NewAuditRecord } from '../../store/audit-store.ts';
import { formatBytes, type AuditCapabilityCall, type Binding, type DecisionResponse } from '../../wire/index.ts';
import type { AuditWriter } from '../audit/audit-writer.ts';
import type { IdentityDeps, PeerCredentials } from '../deps.ts';
import type { DaemonMetrics } from '../metrics/daemon-metrics.ts';
import type { PolicyService } from '../policies/policy-service.ts';
import type { FairScheduler } from '../scheduler/fair-scheduler.ts';
import type { VmRegistry } from '../state/vm-registry.ts';
import { denyOutcome } from '../../engine/deny-outcome.ts';
import { DAEMON_DENY_DETAIL, type Decided } from './daemon-deny.ts';
import { newDecisionId } from './decision-id.ts';
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
  /** How long a connection's resolved VM is reused (within one registry generation). */
  identityTtlMs?: number;
}

export type PipelineResult = { ok: true; response: DecisionResponse } | { ok: false; reason: 'queue-full' | 'vm-queue-full' | 'closed' | 'audit-failed'; message: string };

export class DecisionPipeline {
  readonly requesterVms: RequesterVmCache;
  private readonly identityTtlMs: number;

  constructor(private readonly d: PipelineDeps) {
    this.identityTtlMs = d.identityTtlMs ?? DEFAULT_IDENTITY_TTL_MS;
    this.requesterVms = new RequesterVmCache(d.identity, d.vms, this.identityTtlMs);
  }

  async decide(peer: PeerCredentials, operation: Operation, targetPid: number, bytes: bigint): Promise<PipelineResult> {
    const startedAt = Date.now();
    const t0 = process.hrtime.bigint();
    const base = { peer, operation, targetPid, bytes, startedAt, t0 };

    // The pid was read at connect time: if that process has gone, the pid may name another one now.
    const requester = this.requesterVms.resolve(peer);
    if (requester.kind === 'gone') {
      return this.commit({ ...base, vm: null, binding: null, outcome: denyOutcome('unknown-requester', DAEMON_DENY_DETAIL.exited(peer.pid)) });
    }
    if (requester.kind === 'unknown') return this.commit({ ...base, vm: null, binding: null, outcome: denyOutcome('unknown-requester', DAEMON_DENY_DETAIL.notInVm(peer.pid)) });
    const vm = requester.vm;

    const binding = this.d.policies.bindings.get(operation);
    if (binding === null) return this.commit({ ...base, vm, binding: null, outcome: denyOutcome('no-policy', DAEMON_DENY_DETAIL.nothingBound(operation)) });

    const release = this.d.policies.acquire(binding);
    const admission = this.d.scheduler.submit(vm.identity.uuid, () => this.evaluate(vm, binding, peer, operation, targetPid, bytes, startedAt));
    if (!admission.ok) {
      release();
      this.d.metrics.rejected.inc({ reason: admission.reason });
      return { ok: false, reason: admission.reason, message: admission.reason === 'closed' ? 'the daemon is shutting down' : 'too many requests are waiting' };
    }
    let outcome: Decided;
    try {
      outcome = await admission.result;
    } finally {
      release();
    }
    return this.commit({ ...base, vm, binding, outcome });
  }

  private evaluate(vm: RegisteredVm, binding: Binding, peer: PeerCredentials, operation: Operation, targetPid: number, bytes: bigint, startedAt: number): Promise<Decided> {
    const left = startedAt + this.d.requestDeadlineMs - Date.now();
    if (left <= 0) return Promise.resolve(denyOutcome('deadline', `the request waited ${this.d.requestDeadlineMs} ms for an evaluation slot`));
    const request: PolicyRequest = { operation, requesterPid: peer.pid, requesterUid: peer.uid, targetPid, bytes };
    // Targets found in the VM are trusted as long as the requester's own VM is (identityTtlMs).
    const capabilities = { kind: 'linux', scope: vm, recentMembersMs: this.identityTtlMs } as const;
    return this.d.engine.evaluate(binding.sha256, request, capabilities, { deadlineMs: Math.min(this.d.evaluationDeadlineMs, left) });
  }

  private async commit(c: {
    peer: PeerCredentials;
    operation: Operation;
    targetPid: number;
    bytes: bigint;
    startedAt: number;
    t0: bigint;
    vm: RegisteredVm | null;
    binding: Readonly<Binding> | null;
    outcome: Decided;
  }): Promise<PipelineResult> {
    const o = c.outcome;
    const totalUs = Math.round(Number(process.hrtime.bigint() - c.t0) / 1000);
    const record: NewAuditRecord = {
      decisionId: newDecisionId(c.startedAt),
      time: new Date(c.startedAt).toISOString(),
      requester: { pid: c.peer.pid, uid: c.peer.uid, gid: c.peer.gid },
      vm: c.vm?.identity ?? null,
      operation: c.operation,
      targetPid: c.targetPid,
      bytes: formatBytes(c.bytes),
      policy: c.binding ? { name: c.binding.policy, revision: c.binding.revision, sha256: c.binding.sha256 } : null,
      decision: o.decision,
      reason: o.reason,
      ...(o.errorKind !== undefined ? { errorKind: o.errorKind } : {}),
      ...(o.errorDetail !== undefined ? { errorDetail: o.errorDetail } : {}),
      capabilityCalls: o.capabilityCalls.map(toAuditCall),
      logs: o.logs,
      fuelUsed: o.fuelUsed,
      durationUs: o.durationUs,
      totalUs,
    };
    try {
      await this.d.audit.write(record);
    } catch (err) {
      return { ok: false, reason: 'audit-failed', message: `the decision could not be audited: ${(err as Error).message}` };
    }
    const m = this.d.metrics;
    const policy = c.binding?.policy ?? '';
    m.decisions.inc({ policy, decision: o.decision, error_kind: o.errorKind ?? '' });
    if (c.binding) m.evaluationSeconds.observe({ policy }, o.durationUs / 1e6);
    m.requestSeconds.observe(Number(process.hrtime.bigint() - c.t0) / 1e9);
    const response: DecisionResponse = { decision: o.decision, reason: o.reason, decisionId: record.decisionId };
    if (o.errorKind !== undefined) response.errorKind = o.errorKind;
    return { ok: true, response };
  }
}

function toAuditCall(c: Outcome['capabilityCalls'][number]): AuditCapabilityCall {
  if (c.op === 'set-memlock') return { op: c.op, pid: c.pid, bytes: formatBytes(c.bytes), result: c.result, ...(c.detail !== undefined ? { detail: c.detail } : {}) };
  return { op: c.op, pid: c.pid, result: c.result, ...(c.vmUuid !== undefined ? { vmUuid: c.vmUuid } : {}) };
}
