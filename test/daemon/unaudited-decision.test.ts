// A decision whose audit record cannot be committed is not answered, so it is not an allow: the
// request path undoes what the policy did and reports the decision, with its calls, for the log.
// The real pipeline and engine (real prlimit on a real process), an audit writer that fails.
import type { ChildProcess } from 'node:child_process';
import { spawnChild } from '../support/processes/children.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libc, RLIMIT_MEMLOCK } from '../../runtime/os/libc.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import type { AuditWriter } from '../../runtime/server/audit/audit-writer.ts';
import { DaemonMetrics } from '../../runtime/server/metrics/daemon-metrics.ts';
import { boundPolicyService } from '../support/bound-policy.ts';
import { DecisionPipeline } from '../../runtime/server/request/decision-pipeline.ts';
import { FairScheduler } from '../../runtime/server/scheduler/fair-scheduler.ts';
import { VmRegistry } from '../../runtime/server/state/vm-registry.ts';
import type { NewAuditRecord } from '../../runtime/store/audit-store.ts';
import { memlockFromProc } from '../identity/support/processes.ts';
import { hostilePolicy } from '../support/hostile-policies.ts';
import { everyRequesterIn } from '../support/pipeline-identity.ts';

const MiB = 1024n * 1024n;
let child: ChildProcess;
let engine: Engine;
let metrics: DaemonMetrics;

beforeAll(() => {
  child = spawnChild('sleep', ['300'], { stdio: 'ignore' });
  engine = new Engine({ workers: 1, linuxCapabilities: true, clock: () => 0, limits: { deadlineMs: 10_000 } });
  metrics = new DaemonMetrics({ policiesLoaded: () => 0, vmsRegistered: () => 1, queued: () => 0, inFlight: () => 0 });
});

afterAll(async () => {
  child.kill('SIGKILL');
  metrics.close();
  await engine.close();
});

describe('a decision that cannot be audited', () => {
  it('is answered audit-failed, its effects are undone, and the log gets the record with its calls', async () => {
    const pid = child.pid!;
    const r = libc().prlimit(pid, RLIMIT_MEMLOCK, { soft: 1n * MiB, hard: 8n * MiB });
    if (!r.ok) throw new Error(`prlimit: ${r.errno}`);
    const compiled = await engine.compile(await hostilePolicy('memlock-then-burn')); // set-memlock, then allow
    if (!compiled.ok) throw new Error(compiled.message);
    const vm: RegisteredVm = {
      identity: { uuid: 'unaudited-vm', name: 'unaudited', id: 1, labels: [] },
      anchor: { rootPid: pid, rootStartTime: readStartTime(pid)! },
    };
    const vms = new VmRegistry();
    vms.replace([vm]);
    const policies = boundPolicyService('p', compiled.policy.sha256);
    const audit = {
      commit: (_record, waiter) => waiter.commitFailed(new Error('disk full')),
    } as Pick<AuditWriter, 'commit'> as AuditWriter;
    const unaudited: NewAuditRecord[] = [];
    const pipeline = new DecisionPipeline({
      engine,
      policies,
      vms,
      identity: everyRequesterIn(vm),
      scheduler: new FairScheduler({ globalConcurrency: 1, perKeyInFlight: 1, maxQueued: 10, maxQueuedPerKey: 10 }),
      audit,
      metrics,
      requestDeadlineMs: 10_000,
      evaluationDeadlineMs: 10_000,
      onUnaudited: (record) => unaudited.push(record),
    });
    const result = await pipeline.decide({ pid, uid: 0, gid: 0 } as never, 'set-memlock', pid, 8n * MiB);
    expect(result).toMatchObject({ ok: false, reason: 'audit-failed' });
    expect(unaudited).toHaveLength(1);
    expect(unaudited[0]).toMatchObject({ decision: 'allow', targetPid: pid });
    expect(unaudited[0]!.capabilityCalls.filter((c) => c.op === 'set-memlock')).toEqual([
      {
        op: 'set-memlock',
        pid,
        bytes: String(8n * MiB),
        result: 'ok',
        before: { soft: String(1n * MiB), hard: String(8n * MiB) },
        undo: 'undone',
      },
    ]);
    expect(memlockFromProc(pid)).toEqual({ soft: 1n * MiB, hard: 8n * MiB });
    expect(pipeline.openDecisions).toBe(0);
  }, 60_000);
});
