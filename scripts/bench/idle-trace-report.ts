// Reads an idle-trace.ts file (CAPGATE_IDLE_TRACE, e.g. of an isolation bench's daemon) and prints
// the speculative runs on the main thread: the first after the thread ran none for IDLE_GAP_MS,
// the others, and every run over 5 ms of CPU, with what getrusage(RUSAGE_THREAD) counted in it.
// Usage: node dist/scripts/bench/idle-trace-report.js <idle-trace.json> [gap ms, default 500]
import fs from 'node:fs';
import { SPAN_FIELDS, type IdleTrace } from './idle-trace.ts';

const [file, gapArg] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: idle-trace-report <idle-trace.json> [gap ms]');
  process.exit(2);
}
const IDLE_GAP_MS = Number(gapArg ?? 500);
const trace = JSON.parse(fs.readFileSync(file, 'utf8')) as IdleTrace;

interface Run {
  start: number;
  gapMs: number;
  wallMs: number;
  cpuMs: number;
  sysMs: number;
  minflt: number;
  nivcsw: number;
  prepareMs: number;
  checkMs: number;
  gcMs: number;
  who: number;
  newSpace: string;
}
const runs: Run[] = [];
let inner: number[][] = [];
let lastEnd = Number.NEGATIVE_INFINITY;
const s = trace.spans;
const faulty = new Map<number, string>();
for (let i = 0; i < (trace.faulty?.length ?? 0); i += 5)
  faulty.set(
    trace.faulty[i]!,
    `new ${(trace.faulty[i + 1]! / 2 ** 20).toFixed(1)}/${(trace.faulty[i + 2]! / 2 ** 20).toFixed(1)} MiB`,
  );
let nRun = 0;
for (let i = 0; i < s.length; i += SPAN_FIELDS) {
  const r = s.slice(i, i + SPAN_FIELDS);
  const [kind, start, wallMs, , sysUs, minflt, , , nivcsw, depth, cpuMs] = r as number[];
  if (depth! > 0) {
    inner.push(r);
    continue;
  }
  if (kind === 0) {
    let gcMs = 0;
    for (let g = 0; g < trace.gc.length; g += 3)
      gcMs += Math.max(0, Math.min(start! + wallMs!, trace.gc[g]! + trace.gc[g + 1]!) - Math.max(start!, trace.gc[g]!));
    runs.push({
      start: start!,
      gapMs: start! - lastEnd,
      wallMs: wallMs!,
      cpuMs: cpuMs!,
      sysMs: sysUs! / 1000,
      minflt: minflt!,
      nivcsw: nivcsw!,
      prepareMs: inner.filter((x) => x[0] === 1).reduce((a, x) => a + x[2]!, 0),
      checkMs: inner.filter((x) => x[0] === 2).reduce((a, x) => a + x[2]!, 0),
      gcMs,
      who: trace.runRequester?.[nRun++] ?? -1,
      newSpace: faulty.get(i / SPAN_FIELDS) ?? '',
    });
    lastEnd = start! + wallMs!;
  }
  inner = [];
}
const t0 = runs[0]?.start ?? 0;
const fmt = (r: Run): string =>
  `t=${((r.start - t0) / 1000).toFixed(2)}s gap=${r.gapMs.toFixed(0)}ms wall=${r.wallMs.toFixed(3)} cpu=${r.cpuMs.toFixed(3)} ` +
  `sys~${r.sysMs.toFixed(2)} minflt=${r.minflt} invcs=${r.nivcsw} prepare=${r.prepareMs.toFixed(3)} check=${r.checkMs.toFixed(3)} gc=${r.gcMs.toFixed(2)} vm=${r.who} ${r.newSpace}`;
const q = (xs: number[], p: number): number => {
  const a = [...xs].sort((x, y) => x - y);
  return a[Math.min(a.length - 1, Math.floor(p * a.length))] ?? Number.NaN;
};
const line = (name: string, rs: Run[]): void => {
  const f = (k: keyof Run): string =>
    `${k} ${q(
      rs.map((r) => r[k] as number),
      0.5,
    ).toFixed(3)} [${q(
      rs.map((r) => r[k] as number),
      0.9,
    ).toFixed(3)} p90, ${q(
      rs.map((r) => r[k] as number),
      1,
    ).toFixed(3)} max]`;
  console.log(`${name}: n=${rs.length}  ${f('cpuMs')}  ${f('minflt')}  ${f('checkMs')}  ${f('prepareMs')}`);
};
const firsts = runs.filter((r) => r.gapMs >= IDLE_GAP_MS);
line(`first run after >= ${IDLE_GAP_MS} ms without one`, firsts);
line(
  'the others',
  runs.filter((r) => r.gapMs < IDLE_GAP_MS),
);
const long = runs.filter((r) => r.cpuMs > 5);
console.log(`runs over 5 ms of CPU: ${long.length} of ${runs.length}`);
for (const r of long) console.log(`  ${fmt(r)}`);
console.log('first runs after idle, in order:');
for (const r of firsts) console.log(`  ${fmt(r)}`);
const top = (k: keyof Run, n = 8): void => {
  console.log(`top ${n} runs by ${k}:`);
  for (const r of [...runs].sort((a, b) => (b[k] as number) - (a[k] as number)).slice(0, n)) console.log(`  ${fmt(r)}`);
};
top('cpuMs');
top('minflt');
