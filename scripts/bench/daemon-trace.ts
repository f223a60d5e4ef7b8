// A diagnostic preload for the daemon (`node --import dist/scripts/bench/daemon-trace.js ...`,
// e.g. CAPGATE_BENCH_DAEMON_FLAGS in the isolation bench), with CAPGATE_TRACE_FILE=<file> (%p: the daemon's pid): it
// records, on the monotonic clock (CLOCK_MONOTONIC, the same in every process: the bench's
// clients stamp their requests on it too), and writes to the file as JSON when the daemon exits:
//   - every request of the request socket: its payer (VM), when it was read, when it ran (after
//     its wait in the turn queue), when its answer was written;
//   - every speculative run on the main thread (InlineRunner.run) and every instance made there
//     (InstanceFactory.prepare: the spares), with its wall span and its CPU time;
//   - every garbage collection of the main isolate (PerformanceObserver 'gc'), with its span and kind;
//   - the audit writer's background steps (ingest and index batches) and its commits (flush).
// It wraps the prototypes' methods, so the daemon's code is the same with and without it. Not for
// production: what it records grows for as long as the daemon runs. It records into NumberLogs
// (number-log.ts), never into arrays: a trace array's growth, a copy of all of it into fresh
// memory, fell inside the spans it measured (a prepare's record inside a run) and showed as guest
// turns of 6-15 ms without a GC.
import fs from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { threadCpuClock } from '../../runtime/os/thread-cpu-clock.ts';
import { NumberLog } from './number-log.ts';
import { InstanceFactory } from '../../runtime/engine/instance-factory.ts';
import { InlineRunner } from '../../runtime/engine/speculative/inline-runner.ts';
import { LeanConnection } from '../../runtime/server/http/lean/lean-connection.ts';
import { AuditWriter } from '../../runtime/server/audit/audit-writer.ts';

export interface DaemonTrace {
  /** [payer index, read, ran, answered] per request (ms, monotonic; ran/answered NaN: never). */
  requests: number[];
  payers: string[];
  /** [start, end, cpuMs, kind (0 run, 1 prepare), turn] per guest span (ms, monotonic; turn: the
   * event loop's turn as InlineRunner counts its budget's, from one check phase to the next). */
  guest: number[];
  /** [start, duration, kind] per GC (ms, monotonic; kind: perf_hooks' NODE_PERFORMANCE_GC_*). */
  gc: number[];
  /** [start, end, kind (0 ingest/index step, 1 audit commit)] per span of the audit writer (ms, monotonic). */
  audit: number[];
}

const file = process.env.CAPGATE_TRACE_FILE;
// The daemon's main thread only: workers and the compile processes get the same flags.
if (file !== undefined && isMainThread && /daemon[/\\]main\.js$/.test(process.argv[1] ?? ''))
  install(file.replace('%p', String(process.pid)));

function install(out: string): void {
  // performance.now() and hrtime both count CLOCK_MONOTONIC (libuv's uv_hrtime): one offset maps them.
  const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  const mono = (): number => performance.now() + offset;
  const cpu = threadCpuClock() ?? (() => Number.NaN);
  const requests = new NumberLog();
  const guest = new NumberLog();
  const gc = new NumberLog();
  const audit = new NumberLog();
  const payers: string[] = [];
  const payerIndex = new Map<string, number>();

  // One request at a time per connection: its row in `requests`, until its answer is written.
  const rowOf = new WeakMap<object, number>();
  type Conn = {
    payer: string;
    submit(head: unknown, body: unknown): boolean;
    run(): void;
    write(reply: unknown, close: boolean): void;
  };
  const proto = LeanConnection.prototype as unknown as Conn;
  const { submit, run, write } = proto;
  proto.submit = function (this: Conn, head, body) {
    let p = payerIndex.get(this.payer);
    if (p === undefined) {
      p = payers.push(this.payer) - 1;
      payerIndex.set(this.payer, p);
    }
    rowOf.set(this, requests.length);
    requests.push(p);
    requests.push(mono());
    requests.push(Number.NaN);
    requests.push(Number.NaN);
    return submit.call(this, head, body);
  };
  proto.run = function (this: Conn) {
    const row = rowOf.get(this);
    if (row !== undefined) requests.set(row + 2, mono());
    run.call(this);
  };
  proto.write = function (this: Conn, reply, close) {
    const row = rowOf.get(this);
    if (row !== undefined) {
      requests.set(row + 3, mono());
      rowOf.delete(this);
    }
    write.call(this, reply, close);
  };

  // The runner resets its turn's budget in an immediate its first run of a turn queues; this one
  // is queued right after it, so the two turns end together.
  let turn = 0;
  let turnEnding = false;
  const endTurn = (): void => {
    turn++;
    turnEnding = false;
  };
  const span = <A extends unknown[], R>(kind: number, f: (...a: A) => R) =>
    function (this: unknown, ...a: A): R {
      const w0 = mono();
      const c0 = cpu();
      try {
        return f.apply(this, a);
      } finally {
        const w1 = mono();
        const c1 = cpu();
        guest.push(w0);
        guest.push(w1);
        guest.push(c1 - c0);
        guest.push(kind);
        guest.push(turn);
        if (kind === 0 && !turnEnding) {
          turnEnding = true;
          setImmediate(endTurn);
        }
      }
    };
  InlineRunner.prototype.run = span(0, InlineRunner.prototype.run);
  InstanceFactory.prototype.prepare = span(1, InstanceFactory.prototype.prepare);

  type Writer = { indexStep(): void; flush(): void };
  const writer = AuditWriter.prototype as unknown as Writer;
  const timed = (kind: number, f: () => void) =>
    function (this: unknown): void {
      const t0 = mono();
      try {
        f.call(this);
      } finally {
        const t1 = mono();
        audit.push(t0);
        audit.push(t1);
        audit.push(kind);
      }
    };
  writer.indexStep = timed(0, writer.indexStep);
  writer.flush = timed(1, writer.flush);

  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.push(e.startTime + offset);
      gc.push(e.duration);
      gc.push((e as { detail?: { kind?: number } }).detail?.kind ?? 0);
    }
  }).observe({ entryTypes: ['gc'] });

  process.once('exit', () => {
    const trace: DaemonTrace = {
      requests: requests.toArray(),
      payers,
      guest: guest.toArray(),
      gc: gc.toArray(),
      audit: audit.toArray(),
    };
    fs.writeFileSync(out, JSON.stringify(trace));
  });
}
