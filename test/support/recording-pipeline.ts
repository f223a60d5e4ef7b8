// The real decision pipeline, driven directly by a test: one VM that every requester is in, one
// bound policy, the real scheduler, and an audit writer that keeps what it is given.
import type { PolicyEngine } from '../../runtime/engine/api.ts';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import type { AuditWriter } from '../../runtime/server/audit/audit-writer.ts';
import { DaemonMetrics } from '../../runtime/server/metrics/daemon-metrics.ts';
import { DecisionPipeline } from '../../runtime/server/request/decision-pipeline.ts';
import { FairScheduler } from '../../runtime/server/scheduler/fair-scheduler.ts';
import { VmRegistry } from '../../runtime/server/state/vm-registry.ts';
import type { NewAuditRecord } from '../../runtime/store/audit-store.ts';
import { boundPolicyService } from './bound-policy.ts';
import { everyRequesterIn } from './pipeline-identity.ts';

export interface RecordingPipelineOptions {
  vm: RegisteredVm['identity'];
  /** Only `evaluate` is called. */
  engine: Pick<PolicyEngine, 'evaluate' | 'evaluateHere'>;
  metrics: DaemonMetrics;
  /** The audit records the pipeline writes are pushed here. */
  records: NewAuditRecord[];
  /** The request's and the evaluation's deadline. */
  deadlineMs: number;
}

/** The daemon's metrics as this pipeline's world has it: one policy, one VM, nothing queued. Close it. */
export function recordingMetrics(): DaemonMetrics {
  return new DaemonMetrics({ policiesLoaded: () => 1, vmsRegistered: () => 1, queued: () => 0, inFlight: () => 0 });
}

export function recordingPipeline(o: RecordingPipelineOptions): DecisionPipeline {
  const vm: RegisteredVm = { identity: o.vm, anchor: { rootPid: process.pid, rootStartTime: 1 } };
  const vms = new VmRegistry();
  vms.replace([vm]);
  return new DecisionPipeline({
    engine: o.engine as PolicyEngine,
    policies: boundPolicyService('p', 'a'.repeat(64)),
    vms,
    identity: everyRequesterIn(vm),
    scheduler: new FairScheduler({ globalConcurrency: 1, perKeyInFlight: 1, maxQueued: 10, maxQueuedPerKey: 10 }),
    audit: {
      commit: (record, waiter) => {
        o.records.push(record);
        waiter.committed();
      },
      backlogged: false,
    } as Pick<AuditWriter, 'commit' | 'backlogged'> as AuditWriter,
    metrics: o.metrics,
    requestDeadlineMs: o.deadlineMs,
    evaluationDeadlineMs: o.deadlineMs,
  });
}
