// Pacing against a real daemon: a VM whose policy is expensive (each hostile request spins in a
// worker until the evaluation deadline) floods the request socket. Alone, it is never refused:
// the daemon is work-conserving for one VM. While another VM asks, it is held to its share of
// one core (scheduler.vmShare): its requests wait, and those whose deadline passes meanwhile get
// 429 vm-rate-limited with Retry-After, unevaluated and unaudited, while every request of the
// other VM is allowed. Assertions are on counts and reasons, never on times.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORM_BYTES } from '../support/hostile-policies.ts';
import type { DaemonProcess } from './helpers/daemon-process.ts';
import { startSpinningNeighbour, type SpinningNeighbour } from './helpers/spinning-neighbour.ts';
import type { VmAgent } from './helpers/vm-agent-handle.ts';
import type { RequestsReport } from './helpers/vm-agent.ts';

const EVALUATION_DEADLINE_MS = 200;
/** What the victim asks for: under its target's limit, so the policy's set-memlock lowers it. */
const VICTIM_BYTES = 64n * 1024n;

let neighbour: SpinningNeighbour;
let daemon: DaemonProcess;
let hostile: VmAgent;
let victim: VmAgent;
let hostileTarget: number;
let victimTarget: number;

beforeAll(async () => {
  neighbour = await startSpinningNeighbour({
    // 2 workers: the hostile VM holds at most one (perKeyInFlight 1). Fuel never runs out
    // first: each hostile request holds its worker until the evaluation deadline.
    engine: { workers: 2, limits: { deadlineMs: EVALUATION_DEADLINE_MS, fuel: 1e15 } },
    request: { deadlineMs: 1500 },
    // One hostile request (~200 ms) puts the hostile VM ~180 ms in debt: at 0.1 ms a ms, ~1.8 s
    // to refill, longer than a request's deadline; so while the victim asks, every hostile
    // request that has to wait for it is refused, and only those that find the bucket positive run.
    scheduler: { vmShare: 0.1, vmBurstMs: 20, contentionWindowMs: 1000 },
  });
  ({ daemon, hostile, victim, hostileTarget, victimTarget } = neighbour);
}, 300_000);

afterAll(() => neighbour?.stop());

const flood = (total: number): Promise<RequestsReport> =>
  hostile.requests({
    socketPath: daemon.requestSocket,
    targetPid: hostileTarget,
    bytes: STORM_BYTES,
    total,
    concurrency: 4,
  });

/** A Prometheus sample's value (0 when absent). */
function sample(metrics: string, line: string): number {
  const found = metrics.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? 0 : Number(found.slice(line.length + 1));
}

const hostileRecords = async (): Promise<number> =>
  (await daemon.admin.queryAudit({ vm: 'hostile-vm', limit: 1000 })).records.length;

describe('per-VM pacing', () => {
  // First, before the victim has ever asked: the hostile VM is alone.
  it('an expensive VM alone is never held back nor refused', async () => {
    const f = await flood(12);
    expect(f.errors).toEqual([]);
    expect(f.answered).toBe(12);
    // Every one of them ran to the evaluation deadline (then its set-memlock was undone).
    expect(f.errorKinds).toEqual({ timeout: 12 });
    expect(await hostileRecords()).toBe(12);
    const m = await daemon.admin.metrics();
    expect(sample(m, 'capgate_vm_paced_total')).toBe(0);
    expect(sample(m, 'capgate_requests_rejected_total{reason="vm-rate-limited"}')).toBe(0);
  }, 120_000);

  it('while another VM asks, the expensive VM is paced to its share: its late requests get 429 vm-rate-limited, the other VM is always allowed', async () => {
    const before = await hostileRecords();
    let flooding = true;
    const hostileRun = flood(24).finally(() => (flooding = false));
    // The victim keeps asking, one request at a time, for as long as the flood lasts.
    const victimRuns: RequestsReport[] = [];
    while (flooding)
      victimRuns.push(
        await victim.requests({
          socketPath: daemon.requestSocket,
          targetPid: victimTarget,
          bytes: VICTIM_BYTES,
          total: 10,
          concurrency: 1,
        }),
      );
    const f = await hostileRun;

    // The victim: every request answered, every one allowed.
    const victimAnswered = victimRuns.reduce((n, r) => n + r.answered, 0);
    expect(victimRuns.flatMap((r) => r.errors)).toEqual([]);
    expect(victimRuns.every((r) => r.decisions['allow'] === r.answered && r.answered === 10)).toBe(true);
    expect(victimAnswered).toBeGreaterThan(0);

    // The hostile VM: some requests refused as rate-limited (with a Retry-After), the rest evaluated.
    const refused = f.errorCount;
    expect(refused, JSON.stringify(f)).toBeGreaterThan(0);
    expect(f.errors.every((e) => /^CapgateApiError 429 vm-rate-limited \(retry after [1-9][0-9]* s\)/.test(e))).toBe(
      true,
    );
    expect(f.answered + refused).toBe(24);
    // Each one evaluated ran to the evaluation deadline, or (when its deadline passed while it
    // waited behind the VM's own request in flight, not for its share) was denied as late.
    expect(f.errorKinds['timeout']).toBeGreaterThan(0);
    expect((f.errorKinds['timeout'] ?? 0) + (f.errorKinds['deadline'] ?? 0)).toBe(f.answered);
    // Refused requests were never evaluated, so never audited: only the answered ones are.
    expect((await hostileRecords()) - before).toBe(f.answered);

    const m = await daemon.admin.metrics();
    expect(sample(m, 'capgate_requests_rejected_total{reason="vm-rate-limited"}')).toBe(refused);
    expect(sample(m, 'capgate_vm_paced_total')).toBeGreaterThan(0);
    // None of the victim's decisions was a deny.
    expect((await daemon.admin.queryAudit({ vm: 'victim-vm', decision: 'deny' })).records).toEqual([]);
  }, 120_000);
});
