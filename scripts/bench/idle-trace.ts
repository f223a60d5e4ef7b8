// A diagnostic preload for the daemon (`node --import dist/scripts/bench/idle-trace.js ...`), with
// CAPGATE_IDLE_TRACE=<file>: for every speculative run on the main thread (InlineRunner.run), every
// instance made there (InstanceFactory.prepare) and every capability target check
// (CheckedTargets.use), what the main thread spent on it as getrusage(RUSAGE_THREAD) counts it: user
// and system time, minor and major page faults, context switches; and the main isolate's GCs.
// Written as JSON when the daemon exits. It wraps prototypes' methods: the daemon's code is the same
// with and without it. Used by scripts/bench/idle-turns.ts. Not for production. It records into
// NumberLogs, whose growth never copies inside a span (number-log.ts says what an array's did).
import fs from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { InstanceFactory } from '../../runtime/engine/instance-factory.ts';
import { InlineRunner } from '../../runtime/engine/speculative/inline-runner.ts';
import { CheckedTargets } from '../../runtime/capabilities/linux/checked-targets.ts';
import { threadCpuClock } from '../../runtime/os/thread-cpu-clock.ts';
import { NumberLog } from './number-log.ts';
import { threadUsageReader } from './thread-usage.ts';

/** Fields per span in IdleTrace.spans. */
export const SPAN_FIELDS = 11;
export interface IdleTrace {
  /** [kind (0 run, 1 prepare, 2 target check), start (ms, monotonic), wall ms, user µs, system µs,
   * minor faults, major faults, voluntary and involuntary context switches, depth, thread CPU ms
   * (CLOCK_THREAD_CPUTIME_ID: exact, where getrusage's user/system split is sampled at ticks)] per span. */
  spans: number[];
  /** [start (ms, monotonic), duration ms, kind] per GC of the main isolate. */
  gc: number[];
  /** Number chunks made inside a span (none ready): each may have cost that span a little. */
  madeInline: number;
  /** Requesters (VM uuids) of the runs, by index (a run's span of kind 0 has it in `requester`). */
  requesters: string[];
  /** Per run (kind 0, in order): its requester's index. */
  runRequester: number[];
  /** After each run (a span not inside another) of over FAULTY faults: [span index, new space size,
   * new space physical size, old space size, old space physical size] (bytes, v8.getHeapSpaceStatistics). */
  faulty: number[];
}

const file = process.env.CAPGATE_IDLE_TRACE;
if (file !== undefined && isMainThread && /daemon[/\\]main\.js$/.test(process.argv[1] ?? '')) install(file);

function install(out: string): void {
  const usage = threadUsageReader();
  const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  const spans = new NumberLog();
  const runRequester = new NumberLog();
  const gc: number[] = [];
  const faulty: number[] = [];
  const requesters: string[] = [];
  const requesterIndex = new Map<string, number>();
  const FAULTY = 50;
  const cpu = threadCpuClock() ?? (() => Number.NaN);
  let depth = 0;
  /** Usage before and after, per depth of nesting (spans nest a few deep). */
  const before = Array.from({ length: 8 }, () => [0, 0, 0, 0, 0, 0]);
  const after = Array.from({ length: 8 }, () => [0, 0, 0, 0, 0, 0]);
  const span = <A extends unknown[], R>(kind: number, f: (...a: A) => R) =>
    function (this: unknown, ...a: A): R {
      const u0 = before[depth]!;
      const u1 = after[depth]!;
      usage(u0);
      const w0 = performance.now();
      const c0 = cpu();
      depth++;
      try {
        return f.apply(this, a);
      } finally {
        depth--;
        const w1 = performance.now();
        const c1 = cpu();
        usage(u1);
        spans.push(kind);
        spans.push(w0 + offset);
        spans.push(w1 - w0);
        for (let i = 0; i < 6; i++) spans.push(u1[i]! - u0[i]!);
        spans.push(depth);
        spans.push(c1 - c0);
        if (kind === 0) {
          const who = String(a[3] ?? '');
          let k = requesterIndex.get(who);
          if (k === undefined) requesterIndex.set(who, (k = requesters.push(who) - 1));
          runRequester.push(k);
        }
        if (depth === 0 && u1[2]! - u0[2]! > FAULTY) {
          const spaces = v8.getHeapSpaceStatistics();
          const of = (n: string) => spaces.find((x) => x.space_name === n);
          const ns = of('new_space');
          const os = of('old_space');
          faulty.push(
            spans.length / SPAN_FIELDS - 1,
            ns?.space_size ?? 0,
            ns?.physical_space_size ?? 0,
            os?.space_size ?? 0,
            os?.physical_space_size ?? 0,
          );
        }
      }
    };
  InlineRunner.prototype.run = span(0, InlineRunner.prototype.run);
  InstanceFactory.prototype.prepare = span(1, InstanceFactory.prototype.prepare);
  CheckedTargets.prototype.use = span(2, CheckedTargets.prototype.use);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      gc.push(e.startTime + offset, e.duration, (e as { detail?: { kind?: number } }).detail?.kind ?? 0);
  }).observe({ entryTypes: ['gc'] });
  process.once('exit', () => {
    const trace: IdleTrace = {
      spans: spans.toArray(),
      gc,
      madeInline: spans.madeInline + runRequester.madeInline,
      requesters,
      runRequester: runRequester.toArray(),
      faulty,
    };
    fs.writeFileSync(out, JSON.stringify(trace));
  });
}
