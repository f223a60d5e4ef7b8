// The diagnostic preloads (scripts/bench/daemon-trace.ts, idle-trace.ts) record inside the spans
// they measure on the daemon's main thread: a record must not cost the span more than writing a
// number. Their arrays' growth did (a copy of the whole array into fresh memory, one page fault
// per 4 KiB), and showed as guest turns of 6-15 ms without a GC. Measured in page faults of this
// thread (getrusage RUSAGE_THREAD, exact counts), not in time.
import { describe, expect, it } from 'vitest';
import { NumberLog } from '../../scripts/bench/number-log.ts';
import { threadUsageReader } from '../../scripts/bench/thread-usage.ts';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('NumberLog', () => {
  it('keeps every number in order, across chunks, and sets the ones recorded', () => {
    const log = new NumberLog(4);
    for (let i = 0; i < 11; i++) log.push(i);
    log.set(9, -9);
    log.push(Number.NaN);
    expect(log.length).toBe(12);
    expect(log.get(9)).toBe(-9);
    expect(log.toArray()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, -9, 10, Number.NaN]);
    expect(() => log.set(12, 0)).toThrow(RangeError);
  });

  it('never copies what it recorded: no record takes more than a few page faults, through 8 MB', async () => {
    const usage = threadUsageReader();
    const u = [0, 0, 0, 0, 0, 0];
    const faults = (): number => {
      usage(u);
      return u[2]!;
    };
    /** `n` thousand numbers, a thousand a turn of the event loop (as the daemon records them):
     * the most faults one record took, and all of them. */
    const record = async (log: NumberLog, n: number): Promise<{ worst: number; total: number }> => {
      let worst = 0;
      let total = 0;
      for (let t = 0; t < n; t++) {
        for (let i = 0; i < 1000; i++) {
          const f0 = faults();
          log.push(i);
          const d = faults() - f0;
          total += d;
          if (d > worst) worst = d;
        }
        await turn();
      }
      return { worst, total };
    };
    // The first records fault in this loop's optimized code (39-51 faults once each, measured).
    await record(new NumberLog(), 100);
    const log = new NumberLog();
    const { worst, total } = await record(log, 1000);
    expect(log.length).toBe(1_000_000);
    // A plain array in its place: 2,549 faults in one push (measured), its growth copying ~10 MB.
    // A page of a chunk first written, or a scavenge or a recompile of this loop that falls between
    // the two reads (up to 6 faults seen), but never a copy.
    expect(worst).toBeLessThanOrEqual(16);
    // One fault per page a chunk is first written (512 numbers), a few more for the readers.
    expect(total).toBeLessThan(1_000_000 / 512 + 200);
    expect(log.madeInline).toBe(0);
  });
});
