// The metrics every decision updates are kept without prom-client's per-call objects
// (lean-histogram.ts, DaemonMetrics.decided): /v1/metrics must read the same as prom-client's
// own Histogram and Counter would for the same observations.
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DaemonMetrics } from '../../runtime/server/metrics/daemon-metrics.ts';
import { LeanHistogram } from '../../runtime/server/metrics/lean-histogram.ts';

const BUCKETS = [0.0001, 0.001, 0.01, 1];
// On a bound, between, past the last, zero, negative, repeated.
const VALUES = [0.0001, 0.00005, 0.0005, 0.001, 0.02, 1, 3, 0, -2, 0.0005];

describe('LeanHistogram', () => {
  it("reads as prom-client's Histogram without a label, before and after observations, and after a reset", async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const lean = new LeanHistogram({ name: 'h_seconds', help: 'help', buckets: BUCKETS, registers: [mine] });
    const prom = new Histogram({ name: 'h_seconds', help: 'help', buckets: BUCKETS, registers: [theirs] });
    expect(await mine.metrics()).toBe(await theirs.metrics());
    for (const v of VALUES) {
      lean.observe(v);
      prom.observe(v);
    }
    expect(await mine.metrics()).toBe(await theirs.metrics());
    expect(await mine.metrics()).toContain('h_seconds_bucket{le="0.001"} 7');
    lean.reset();
    prom.reset();
    expect(await mine.metrics()).toBe(await theirs.metrics());
  });

  it("reads as prom-client's Histogram with a label: series in the order first observed, values escaped", async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const lean = new LeanHistogram({
      name: 'e_seconds',
      help: 'evaluations',
      buckets: BUCKETS,
      labelName: 'policy',
      registers: [mine],
    });
    const prom = new Histogram({
      name: 'e_seconds',
      help: 'evaluations',
      buckets: BUCKETS,
      labelNames: ['policy'],
      registers: [theirs],
    });
    expect(await mine.metrics()).toBe(await theirs.metrics());
    const policies = ['b', 'a', 'quo"te\\back\nline', 'b', ''];
    for (const [k, v] of VALUES.entries()) {
      const policy = policies[k % policies.length]!;
      lean.observe(v, policy);
      prom.observe({ policy }, v);
    }
    expect(await mine.metrics()).toBe(await theirs.metrics());
    expect(await mine.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('refuses a value that is not a number, as prom-client does', () => {
    const lean = new LeanHistogram({ name: 'x', help: 'x', buckets: BUCKETS, registers: [] });
    expect(() => lean.observe(Number.NaN)).toThrow(TypeError);
    expect(() => lean.observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});

/** The daemon's metrics with nothing loaded, registered or queued. */
function idleDaemonMetrics(): DaemonMetrics {
  return new DaemonMetrics({ policiesLoaded: () => 0, vmsRegistered: () => 0, queued: () => 0, inFlight: () => 0 });
}

describe("the audit commit's histograms", () => {
  it("read as prom-client's Histograms of the same definition after the same commits", async () => {
    const metrics = idleDaemonMetrics();
    const theirs = new Registry();
    const batches = new Histogram({
      name: 'capgate_audit_batch_records',
      help: 'Records per audit group commit.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [theirs],
    });
    const seconds = new Histogram({
      name: 'capgate_audit_commit_duration_seconds',
      help: 'Duration of one audit group commit.',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers: [theirs],
    });
    const text = async (r: Registry, name: string): Promise<string> => (await r.getSingleMetricAsString(name)) ?? '';
    try {
      for (const [n, s] of [
        [1, 0.00004],
        [1, 0.0001],
        [3, 0.002],
        [256, 0.07],
        [300, 0.00012],
        [2, 0],
      ] as const) {
        metrics.auditBatchSize.observe(n);
        metrics.auditCommitSeconds.observe(s);
        batches.observe(n);
        seconds.observe(s);
      }
      for (const name of ['capgate_audit_batch_records', 'capgate_audit_commit_duration_seconds'])
        expect(await text(metrics.registry, name), name).toBe(await text(theirs, name));
      expect(await text(metrics.registry, 'capgate_audit_batch_records')).toContain(
        'capgate_audit_batch_records_bucket{le="4"} 4',
      );
    } finally {
      metrics.close();
    }
  });
});

describe('capgate_decisions_total', () => {
  it('counts through decided() what inc() would have: same series, same order, across scrapes', async () => {
    const metrics = idleDaemonMetrics();
    const theirs = new Registry();
    const counter = new Counter({
      name: 'capgate_decisions_total',
      help: 'Decisions by policy, decision and error kind (policy "" when no policy ran).',
      labelNames: ['policy', 'decision', 'error_kind'],
      registers: [theirs],
    });
    const decisions: Array<[string, string, string]> = [
      ['p2', 'allow', ''],
      ['p1', 'deny', 'trap'],
      ['p2', 'allow', ''],
      ['', 'deny', ''],
      ['p1', 'allow', ''],
    ];
    const text = async (): Promise<string> =>
      (await metrics.registry.getSingleMetricAsString('capgate_decisions_total')) ?? '';
    try {
      for (const [round, batch] of [decisions.slice(0, 3), decisions.slice(3)].entries()) {
        for (const [policy, decision, kind] of batch) {
          metrics.decided(policy, decision, kind);
          counter.inc({ policy, decision, error_kind: kind });
        }
        expect(await text(), `scrape ${round}`).toBe(await theirs.getSingleMetricAsString('capgate_decisions_total'));
      }
      expect(await text()).toContain('capgate_decisions_total{policy="p2",decision="allow",error_kind=""} 2');
    } finally {
      metrics.close();
    }
  });
});
