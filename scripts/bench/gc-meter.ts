// Loaded into the daemon by the "garbage" bench (`node --import <this> daemon/main.js`, with an
// IPC channel to the bench): meters what the main isolate allocates and collects between a
// `start` and a `stop` message, and on request samples where the allocations come from.
//
// Bytes allocated: V8 has no running total in Node 20 or 24 (v8.getHeapStatistics() has no
// total_allocated_bytes), so it is reconstructed from v8.GCProfiler, which records the heap's
// used size before and after every collection: what was allocated between two collections is
// the used size before the second minus the used size after the first; plus the growth from the
// start to the first collection and from the last one to the end. Every object allocated counts,
// whether it dies young or not. Buffers' backing stores (outside the V8 heap) are not counted.
//
// Where from: the inspector's sampling heap profiler with the objects that minor and major
// collections freed kept in the profile (HeapProfiler.startSampling with
// includeObjectsCollectedBy{Minor,Major}GC): a profile of allocation, not of what survives.
//
// Inert unless CAPGATE_BENCH_GC_METER is set (taken out of the environment at once, so that the
// daemon's compile process, which inherits its flags, never runs it); main thread only.
import inspector from 'node:inspector';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';

export type GcMeterCommand =
  | { gcMeter: 'start' }
  | { gcMeter: 'stop' }
  | { gcMeter: 'profile-start'; intervalBytes: number }
  | { gcMeter: 'profile-stop' };

export interface GcReading {
  allocatedBytes: number;
  scavenges: number;
  markCompacts: number;
  /** Pause time in the main thread of each kind, in ms (GCProfiler's cost). */
  scavengeMs: number;
  markCompactMs: number;
}

export type GcMeterMessage =
  | { gcMeter: 'started' }
  | { gcMeter: 'reading'; reading: GcReading }
  | { gcMeter: 'profile'; profile: SamplingHeapProfile }
  | { gcMeter: 'failed'; error: string };

/** The inspector's sampling heap profile (the .heapprofile format DevTools opens). */
export interface SamplingHeapProfile {
  head: ProfileNode;
  samples: Array<{ size: number; nodeId: number; ordinal: number }>;
}
export interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  id: number;
  children: ProfileNode[];
}

interface GcStatistic {
  gcType: string;
  cost: number;
  beforeGC: { heapStatistics: { usedHeapSize: number } };
  afterGC: { heapStatistics: { usedHeapSize: number } };
}

/** What was allocated between `startUsed` and `endUsed`, from the collections in between. */
export function readingOf(startUsed: number, endUsed: number, statistics: GcStatistic[]): GcReading {
  const r: GcReading = { allocatedBytes: 0, scavenges: 0, markCompacts: 0, scavengeMs: 0, markCompactMs: 0 };
  let used = startUsed;
  for (const s of statistics) {
    r.allocatedBytes += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - used);
    used = s.afterGC.heapStatistics.usedHeapSize;
    // GCProfiler's cost is in µs. Minor collections are "Scavenge" (or a minor mark-sweep on a
    // V8 configured for it); full ones "MarkSweepCompact". The other callbacks it reports
    // (incremental marking steps, weak callbacks) are neither.
    if (s.gcType === 'Scavenge' || s.gcType === 'MinorMarkSweep' || s.gcType === 'MinorMarkCompact') {
      r.scavenges++;
      r.scavengeMs += s.cost / 1000;
    } else if (s.gcType === 'MarkSweepCompact') {
      r.markCompacts++;
      r.markCompactMs += s.cost / 1000;
    }
  }
  r.allocatedBytes += Math.max(0, endUsed - used);
  return r;
}

function install(): void {
  let profiler: v8.GCProfiler | null = null;
  let startUsed = 0;
  let session: inspector.Session | null = null;
  const send = (m: GcMeterMessage): void => void process.send?.(m);
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) =>
      session!.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  process.on('message', (m: GcMeterCommand | { gcMeter?: undefined }) => {
    switch (m.gcMeter) {
      case 'start':
        profiler?.stop();
        profiler = new v8.GCProfiler();
        startUsed = v8.getHeapStatistics().used_heap_size;
        profiler.start();
        return send({ gcMeter: 'started' });
      case 'stop': {
        const endUsed = v8.getHeapStatistics().used_heap_size;
        const result = profiler?.stop() as { statistics: GcStatistic[] } | undefined;
        profiler = null;
        if (result === undefined) return send({ gcMeter: 'failed', error: 'stop without start' });
        return send({ gcMeter: 'reading', reading: readingOf(startUsed, endUsed, result.statistics) });
      }
      case 'profile-start':
        session = new inspector.Session();
        session.connect();
        return void post('HeapProfiler.startSampling', {
          samplingInterval: m.intervalBytes,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        }).then(
          () => send({ gcMeter: 'started' }),
          (err: Error) => send({ gcMeter: 'failed', error: err.message }),
        );
      case 'profile-stop':
        return void post('HeapProfiler.stopSampling').then(
          (r) => {
            session?.disconnect();
            session = null;
            send({ gcMeter: 'profile', profile: (r as { profile: SamplingHeapProfile }).profile });
          },
          (err: Error) => send({ gcMeter: 'failed', error: err.message }),
        );
    }
  });
  // The channel must not keep the daemon alive, nor its closing stop it.
  process.channel?.unref();
}

if (process.env.CAPGATE_BENCH_GC_METER !== undefined) {
  delete process.env.CAPGATE_BENCH_GC_METER;
  if (isMainThread && process.send !== undefined) install();
}
