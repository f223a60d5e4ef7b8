// getrusage(RUSAGE_THREAD) of the calling thread, through koffi (as runtime/os/libc.ts binds libc):
// for diagnostics only (idle-trace.ts, tests). The minor and major fault counts and the context
// switches are exact; the user/system split of the CPU time is sampled at the scheduler's ticks
// (4 ms here), so over a span of a few hundred µs only their sum is worth reading, and the thread's
// CPU clock (runtime/os/thread-cpu-clock.ts) is the better measure of it.
import { createRequire } from 'node:module';

type KoffiFn = (...a: unknown[]) => number;
interface Koffi {
  load(name: string): { func(proto: string): KoffiFn };
}

const RUSAGE_THREAD = 1;

/** A reader filling `into` with [user µs, system µs, minor faults, major faults, voluntary and
 * involuntary context switches] of the calling thread so far. It allocates nothing per read. */
export function threadUsageReader(): (into: number[]) => void {
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const getrusage = koffi.load('libc.so.6').func('int getrusage(int who, void *usage)');
  // struct rusage on 64-bit Linux: two timevals, then 14 longs.
  const buf = Buffer.alloc(144);
  const v = new BigInt64Array(buf.buffer, buf.byteOffset, 18);
  return (into) => {
    if (getrusage(RUSAGE_THREAD, buf) !== 0) throw new Error('getrusage(RUSAGE_THREAD) failed');
    into[0] = Number(v[0]!) * 1e6 + Number(v[1]!);
    into[1] = Number(v[2]!) * 1e6 + Number(v[3]!);
    into[2] = Number(v[8]!);
    into[3] = Number(v[9]!);
    into[4] = Number(v[16]!);
    into[5] = Number(v[17]!);
  };
}
