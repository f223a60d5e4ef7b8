// The engine keeps back-off per VM (the one the request path scopes the capabilities to), so a
// VM's back-off from the daemon's own thread is its own: a VM storming a policy that grows its
// memory goes to the workers, and another VM's requests of the same policy still run on the main
// thread (no worker round trip).
// The real pipeline and engine, real processes as the VMs.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../runtime/engine/engine.ts';
import { resolveRequesterVm } from '../../runtime/identity/index.ts';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import type { AuditWriter } from '../../runtime/server/audit/audit-writer.ts';
import { DaemonMetrics } from '../../runtime/server/metrics/daemon-metrics.ts';
import { boundPolicyService } from '../support/bound-policy.ts';
import { DecisionPipeline } from '../../runtime/server/request/decision-pipeline.ts';
import { FairScheduler, type SchedulerClock } from '../../runtime/server/scheduler/fair-scheduler.ts';
import type { PolicyService } from '../../runtime/server/policies/policy-service.ts';
import { VmRegistry } from '../../runtime/server/state/vm-registry.ts';
import { componentFromWat, policyWat } from '../support/components.ts';
import { hostilePolicy, STORM_BYTES } from '../support/hostile-policies.ts';
import { spawnChild } from '../support/processes/children.ts';
import { pipelineIdentity } from '../support/pipeline-identity.ts';

const STORM = 7777n;
const children: ChildProcess[] = [];
let engine: Engine;
let metrics: DaemonMetrics;

beforeAll(() => {
  // The engine's clock stands still: what a run here costs in time decides nothing in these tests.
  engine = new Engine({ workers: 1, linuxCapabilities: true, clock: () => 0, limits: { deadlineMs: 10_000 } });
  metrics = new DaemonMetrics({ policiesLoaded: () => 0, vmsRegistered: () => 2, queued: () => 0, inFlight: () => 0 });
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  metrics.close();
  await engine.close();
});

/** A VM whose root is a process of its own (its pid: the requester, and its own target). */
function vmOf(name: string): { vm: RegisteredVm; pid: number } {
  const child = spawnChild('sleep', ['300'], { stdio: 'ignore' });
  children.push(child);
  const pid = child.pid!;
  return {
    vm: {
      identity: { uuid: `${name}-uuid`, name, id: children.length, labels: [] },
      anchor: { rootPid: pid, rootStartTime: readStartTime(pid)! },
    },
    pid,
  };
}

function pipelineOf(
  policies: PolicyService,
  vms: VmRegistry,
  scheduler: FairScheduler,
  droppedMemoryMsPerMiB?: number,
): DecisionPipeline {
  const audit = {
    commit: (_record, waiter) => waiter.committed(),
    backlogged: false,
  } as Pick<AuditWriter, 'commit' | 'backlogged'> as AuditWriter;
  return new DecisionPipeline({
    engine,
    policies,
    vms,
    identity: pipelineIdentity(resolveRequesterVm),
    scheduler,
    audit,
    metrics,
    requestDeadlineMs: 10_000,
    evaluationDeadlineMs: 10_000,
    ...(droppedMemoryMsPerMiB !== undefined ? { droppedMemoryMsPerMiB } : {}),
  });
}

describe("a VM's back-off from the main thread", () => {
  it("is its own: another VM's requests of the same policy still run there", async () => {
    // One policy for both VMs: a request for STORM bytes grows 20 pages (never on the main thread).
    const compiled = await engine.compile(
      await componentFromWat(
        policyWat({
          evaluateBody: `(if (i64.eq (local.get $bytes) (i64.const ${STORM})) (then (drop (memory.grow (i32.const 20))))) (i32.const 1024)`,
        }),
      ),
    );
    if (!compiled.ok) throw new Error(compiled.message);
    const hostile = vmOf('hostile');
    const victim = vmOf('victim');
    const vms = new VmRegistry();
    vms.replace([hostile.vm, victim.vm]);
    const policies = boundPolicyService('shared', compiled.policy.sha256);
    const pipeline = pipelineOf(
      policies,
      vms,
      new FairScheduler({ globalConcurrency: 2, perKeyInFlight: 1, maxQueued: 10, maxQueuedPerKey: 10 }),
    );
    const decide = async ({ pid }: { pid: number }, bytes: bigint): Promise<void> => {
      const r = await pipeline.decide({ pid, uid: 0, gid: 0 } as never, 'set-memlock', pid, bytes);
      expect(r).toMatchObject({ ok: true, response: { decision: 'allow' } });
      await new Promise((r) => setImmediate(r));
    };
    const stats = engine.inlineStats!;
    // Its run on the main thread is refused the growth: continued in a worker, and it backs off.
    await decide(hostile, STORM);
    expect(stats).toMatchObject({ growthRefused: 1, continued: 1, skipped: 0 });
    await decide(hostile, STORM); // the hostile VM now goes to the workers
    const decided = stats.decided;
    expect(stats.skipped).toBe(1);
    for (let i = 0; i < 5; i++) await decide(victim, 1n << 20n);
    expect(stats).toMatchObject({ decided: decided + 5, skipped: 1 });
  }, 60_000);
});

describe("the memory a VM's decisions drop", () => {
  it('is charged to that VM: the scheduler paces it by what collecting that memory costs', async () => {
    // The page-storm policy of the isolation bench: a request for STORM_BYTES grows 21 pages.
    const compiled = await engine.compile(await hostilePolicy('page-storm', { onStormOnly: true }));
    if (!compiled.ok) throw new Error(compiled.message);
    const hostile = vmOf('storming');
    const victim = vmOf('asking');
    const vms = new VmRegistry();
    vms.replace([hostile.vm, victim.vm]);
    // The scheduler's clock stands still: a job's wall time is 0, so all a VM is charged is what
    // its decisions leave behind. A burst of 1 ms, 1 ms a MiB dropped: one storm (1.375 MiB) is over it.
    let now = 0;
    const timers: Array<() => void> = [];
    const clock: SchedulerClock = {
      now: () => now,
      setTimer: (fn) => timers.push(fn),
      clearTimer: () => undefined,
    };
    const paced: string[] = [];
    const scheduler = new FairScheduler(
      {
        globalConcurrency: 2,
        perKeyInFlight: 1,
        maxQueued: 10,
        maxQueuedPerKey: 10,
        vmShare: 0.5,
        vmBurstMs: 1,
      },
      { clock, onPaced: (key) => paced.push(key) },
    );
    const pipeline = pipelineOf(boundPolicyService('page-storm', compiled.policy.sha256), vms, scheduler, 1);
    const decide = ({ pid }: { pid: number }, bytes: bigint) =>
      pipeline.decide({ pid, uid: 0, gid: 0 } as never, 'set-memlock', pid, bytes);
    const allowed = { ok: true, response: { decision: 'allow' } };
    // Another VM is asking (within the contention window), so shares hold.
    expect(await decide(victim, 4096n)).toMatchObject(allowed);
    // Calm requests of the hostile VM drop nothing: never held back, however many.
    for (let i = 0; i < 5; i++) expect(await decide(hostile, 4096n)).toMatchObject(allowed);
    expect(paced).toEqual([]);
    // One storm drops 22 pages: 1.375 ms charged, over the 1 ms bucket. The next request waits...
    expect(await decide(hostile, STORM_BYTES)).toMatchObject(allowed);
    const next = decide(hostile, 4096n);
    await new Promise((r) => setImmediate(r));
    expect(paced).toEqual([`${hostile.vm.identity.uuid}`]);
    // ...while the other VM is not held back.
    expect(await decide(victim, 4096n)).toMatchObject(allowed);
    // Once its bucket is positive again (0.375 ms in debt, at 0.5 ms a ms: after 0.75 ms), it goes on.
    now += 2;
    for (const fire of timers.splice(0)) fire();
    expect(await next).toMatchObject(allowed);
  }, 60_000);
});
