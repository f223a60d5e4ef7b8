// Where a victim's latency went, request by request: joins the isolation bench's victim trace
// (CAPGATE_BENCH_TRACE_DIR: victim.jsonl, isolation-vm-client.ts) with the daemon's
// (daemon-trace.ts, CAPGATE_TRACE_FILE), both on CLOCK_MONOTONIC, and prints, per row and side
// (alone, control, loaded), the mean of each part of a request's time over all its requests and
// over its slowest 1% (those at or above its p99):
//   before read: sent -> the daemon's main thread read it (it was busy with other work, or waited
//     for a CPU); queued: read -> ran (the turn queue); handled: ran -> answer written (evaluation,
//     audit commit); after: written -> the client had it;
//   and, over the whole request (sent -> answered), what the daemon's main thread did (schedstat):
//     on CPU, waiting for a CPU, neither (asleep: nothing to do, or blocked); the main isolate's GC
//     in it; guest runs in it; the other VMs' requests the main thread ran meanwhile (how many, and
//     their time from run to answer); the audit's ingest and index steps in it;
//   wait prev: counted from (when it was due) -> the previous answer came (the daemon's, on the
//     previous request); client gap: from when it could be sent to sent (the client was not on a
//     CPU: its own timer is never counted, but a stall between an answer and the next send is);
//   round trip: sent -> answered.
// Usage: node dist/scripts/bench/isolation-trace-report.js <victim.jsonl> <daemon-trace.json> [configuration]
import fs from 'node:fs';
import type { DaemonTrace } from './daemon-trace.ts';

interface Block {
  configuration: string;
  label: string;
  trace: number[];
}

const [victimFile, daemonFile, only] = process.argv.slice(2);
if (victimFile === undefined || daemonFile === undefined) {
  console.error('usage: isolation-trace-report <victim.jsonl> <daemon-trace.json> [configuration]');
  process.exit(2);
}
const blocks = fs
  .readFileSync(victimFile, 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => JSON.parse(l) as Block)
  .filter((b) => only === undefined || b.configuration === only);
const daemon = JSON.parse(fs.readFileSync(daemonFile, 'utf8')) as DaemonTrace;

/** Sorted intervals [start, end] and a sum of their overlap with [a, b]. */
class Intervals {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  add(s: number, e: number): void {
    this.starts.push(s);
    this.ends.push(e);
  }
  sort(): this {
    const order = this.starts.map((_, i) => i).sort((i, j) => this.starts[i]! - this.starts[j]!);
    const s = order.map((i) => this.starts[i]!);
    const e = order.map((i) => this.ends[i]!);
    this.starts.splice(0, s.length, ...s);
    this.ends.splice(0, e.length, ...e);
    return this;
  }
  /** Index of the first interval starting at or after t. */
  private from(t: number): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  /** Overlap (ms) with [a, b]; intervals start within `longest` ms before a at the earliest. */
  overlap(a: number, b: number, longest = 200): number {
    let sum = 0;
    for (let i = this.from(a - longest); i < this.starts.length && this.starts[i]! < b; i++)
      sum += Math.max(0, Math.min(b, this.ends[i]!) - Math.max(a, this.starts[i]!));
    return sum;
  }
  count(a: number, b: number): number {
    return this.from(b) - this.from(a);
  }
}

const gc = new Intervals();
for (let i = 0; i < daemon.gc.length; i += 3) gc.add(daemon.gc[i]!, daemon.gc[i]! + daemon.gc[i + 1]!);
gc.sort();
const guest = new Intervals();
for (let i = 0; i < daemon.guest.length; i += 5)
  if (daemon.guest[i + 3] === 0) guest.add(daemon.guest[i]!, daemon.guest[i + 1]!);
guest.sort();

// Requests by payer; the victim is the payer whose reads fall in the victim's requests.
const byPayer = daemon.payers.map(() => ({ read: [] as number[], ran: [] as number[], written: [] as number[] }));
for (let i = 0; i < daemon.requests.length; i += 4) {
  const p = byPayer[daemon.requests[i]!]!;
  p.read.push(daemon.requests[i + 1]!);
  p.ran.push(daemon.requests[i + 2]!);
  p.written.push(daemon.requests[i + 3]!);
}
const firstSent = blocks[0]?.trace[1] ?? 0;
const victim = byPayer.findIndex((p) => p.read.some((r) => r >= firstSent && r < firstSent + 1000));
const audit = new Intervals();
const auditKinds = daemon.audit ?? [];
for (let i = 0; i < auditKinds.length; i += 3)
  if (auditKinds[i + 2] === 0) audit.add(auditKinds[i]!, auditKinds[i + 1]!);
audit.sort();
const others = new Intervals();
for (const [k, p] of byPayer.entries())
  if (k !== victim) for (const [i, r] of p.ran.entries()) others.add(Number.isNaN(r) ? p.read[i]! : r, p.written[i]!);
others.sort();
const v = byPayer[victim]!;
const lowerBound = (xs: number[], t: number): number => {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};

const PARTS = [
  'latency',
  'wait prev',
  'client gap',
  'round trip',
  'before read',
  'queued',
  'handled',
  'after',
  'main on CPU',
  'main CPU wait',
  'main asleep',
  'GC',
  'guest',
  'other VM reqs',
  'other VM ms',
  'index ms',
] as const;
type Part = (typeof PARTS)[number];

const sides = new Map<string, Array<Record<Part, number>>>();
/** Per side, the index in its rows where each block starts (a stretch never spans two blocks). */
const blockStarts = new Map<string, number[]>();
for (const b of blocks) {
  const [row, side] = b.label.split('/');
  const key = `${b.configuration} ${row} ${side}`;
  const rows = sides.get(key) ?? [];
  sides.set(key, rows);
  blockStarts.set(key, [...(blockStarts.get(key) ?? []), rows.length]);
  let prevAnswered = -Infinity;
  for (let i = 0; i < b.trace.length; i += 7) {
    const [t0, sent, answered, exec0, wait0, exec1, wait1] = b.trace.slice(i, i + 7) as number[] as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const k = lowerBound(v.read, sent);
    const read = v.read[k] ?? Number.NaN;
    const matched = read <= answered;
    const ran = matched ? (Number.isNaN(v.ran[k]!) ? read : v.ran[k]!) : Number.NaN;
    const written = matched ? v.written[k]! : Number.NaN;
    const total = answered - sent;
    rows.push({
      latency: answered - t0,
      'wait prev': Math.max(0, Math.min(sent, prevAnswered) - t0),
      'client gap': sent - Math.max(t0, prevAnswered),
      'round trip': total,
      'before read': matched ? read - sent : Number.NaN,
      queued: ran - read,
      handled: written - ran,
      after: answered - written,
      'main on CPU': exec1 - exec0,
      'main CPU wait': wait1 - wait0,
      'main asleep': total - (exec1 - exec0) - (wait1 - wait0),
      GC: gc.overlap(sent, answered),
      guest: guest.overlap(sent, answered),
      'other VM reqs': others.count(sent, answered),
      'other VM ms': others.overlap(sent, answered),
      'index ms': audit.overlap(sent, answered),
    });
    prevAnswered = answered;
  }
}

const mean = (rs: Array<Record<Part, number>>, p: Part): number =>
  rs.reduce((t, r) => t + (Number.isNaN(r[p]) ? 0 : r[p]), 0) / Math.max(1, rs.length);
const header = ['row side', 'n', 'p50', 'p99', 'trip p99', 'which', ...PARTS.slice(1)];
console.log(header.join('\t'));
for (const [key, rs] of sides) {
  const sorted = rs.map((r) => r.latency).sort((a, b) => a - b);
  const p50 = sorted[Math.floor(sorted.length * 0.5)]!;
  const p99 = sorted[Math.floor(sorted.length * 0.99)]!;
  const slow = rs.filter((r) => r.latency >= p99);
  const trips = rs.map((r) => r['round trip']).sort((a, b) => a - b);
  const tripP99 = trips[Math.floor(trips.length * 0.99)]!;
  const slowTrips = rs.filter((r) => r['round trip'] >= tripP99);
  for (const [which, set] of [
    ['all', rs],
    ['>=p99', slow],
    ['trip>=p99', slowTrips],
  ] as const)
    console.log(
      [
        key,
        set.length,
        p50.toFixed(2),
        p99.toFixed(2),
        tripP99.toFixed(2),
        which,
        ...PARTS.slice(1).map((p) => mean(set, p).toFixed(p === 'other VM reqs' ? 1 : 2)),
      ].join('\t'),
    );
}
// The longest round trips of each side, each with its parts: what makes the p99 (a stall of S ms
// makes the S / 2 requests due meanwhile late too).
console.log('\nlongest round trips: row side, then the parts as above');
for (const [key, rs] of sides) {
  const top = [...rs].sort((a, b) => b['round trip'] - a['round trip']).slice(0, 4);
  for (const r of top)
    console.log([key, ...PARTS.slice(1).map((p) => r[p].toFixed(p === 'other VM reqs' ? 0 : 2))].join('\t'));
}

// The stretch behind each side's worst latency: from the last request sent on time, every
// request late because the one before it was (its round trips, on average, over the 2 ms
// interval): what a p99 under coordinated-omission accounting is made of.
console.log('\nthe stretch behind the worst latency: row side, worst, requests late in a row, then their mean parts');
for (const [key, rs] of sides) {
  let worst = 0;
  for (let i = 1; i < rs.length; i++) if (rs[i]!.latency > rs[worst]!.latency) worst = i;
  const first = Math.max(...(blockStarts.get(key) ?? [0]).filter((b) => b <= worst));
  let start = worst;
  while (start > first && rs[start]!['wait prev'] > 0.01) start--;
  const stretch = rs.slice(start, worst + 1);
  console.log(
    [
      key,
      rs[worst]!.latency.toFixed(1),
      stretch.length,
      ...PARTS.slice(1).map((p) => mean(stretch, p).toFixed(2)),
    ].join('\t'),
  );
}

// The longest guest turns, as the runner counts them (its runs' CPU time in one turn of the event
// loop; an instance made outside a run is a turn of its own), with the GC inside their spans.
interface Turn {
  cpu: number;
  wall: number;
  gcMs: number;
  runs: number;
  at: number;
}
const turns = new Map<string, Turn>();
for (let i = 0; i < daemon.guest.length; i += 5) {
  const [start, end, cpu, kind, n] = daemon.guest.slice(i, i + 5) as [number, number, number, number, number];
  // A spare made inside a run is in the run's span already.
  const inRun = kind === 1 && guest.overlap(start, end) >= end - start;
  if (inRun) continue;
  const key = kind === 0 ? `run ${n}` : `spare ${i}`;
  const t = turns.get(key) ?? { cpu: 0, wall: 0, gcMs: 0, runs: 0, at: start };
  turns.set(key, t);
  t.cpu += cpu;
  t.wall += end - start;
  t.gcMs += gc.overlap(start, end);
  t.runs++;
}
const longest = [...turns.entries()].sort((a, b) => b[1].cpu - a[1].cpu).slice(0, 15);
console.log('\nlongest guest turns: kind, CPU ms, wall ms (summed over its runs), GC ms inside them, runs');
for (const [key, t] of longest)
  console.log(`${key.split(' ')[0]}\t${t.cpu.toFixed(2)}\t${t.wall.toFixed(2)}\t${t.gcMs.toFixed(2)}\t${t.runs}`);
