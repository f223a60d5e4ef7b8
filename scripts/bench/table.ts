// Shared measurement and table printing for `npm run bench`.

export interface BenchRow {
  name: string;
  /** Per-operation samples in microseconds. */
  samplesUs: number[];
}

export interface Summary {
  name: string;
  n: number;
  p50: number;
  p99: number;
  opsPerSec: number;
}

export function summarize(row: BenchRow): Summary {
  const sorted = [...row.samplesUs].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const p50 = at(0.5);
  return { name: row.name, n: sorted.length, p50, p99: at(0.99), opsPerSec: 1e6 / p50 };
}

/** Times `op` `iterations` times after `warmup` runs; returns per-call microseconds. */
/** `between` runs untimed after each op (e.g. a turn of the event loop, as a server gets between requests). */
export async function sample(
  op: () => unknown,
  iterations: number,
  warmup = Math.min(200, iterations),
  between?: () => Promise<unknown>,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) {
    await op();
    await between?.();
  }
  const out: number[] = new Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    await op();
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
    await between?.();
  }
  return out;
}

/** Two turns of the event loop: what runs after an answer (setImmediate chains) gets to run. */
export const eventLoopTurns = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

/** Prints a table with medians, p99 and each row's ratio against the baseline row. */
export function printTable(title: string, rows: BenchRow[], baselineName: string): void {
  const sums = rows.map(summarize);
  const base = sums.find((s) => s.name === baselineName);
  const header = ['case', 'n', 'p50 µs', 'p99 µs', `p50 vs ${baselineName}`];
  const lines = sums.map((s) => [
    s.name,
    String(s.n),
    s.p50.toFixed(1),
    s.p99.toFixed(1),
    base ? `${(s.p50 / base.p50).toFixed(2)}x` : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n## ${title}\n`);
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
}
