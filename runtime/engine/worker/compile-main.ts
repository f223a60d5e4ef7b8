// The compile worker: runs the upload pipeline (compile.ts: parse, contract check, upload
// limits, instrumentation, WebAssembly.compile, WIT, trial instantiation) off the daemon's main
// thread, one job at a time. The main side bounds it in time and memory (compile-worker.ts).
// It runs at a low CPU priority (nice 10): an upload (a bomb pushed in a loop, too) takes a core only
// when the daemon's main thread and its evaluation workers do not want it.
import { parentPort } from 'node:worker_threads';
import { BACKGROUND_NICE, niceThisThread } from '../../os/thread-priority.ts';
import type { CompileResult } from '../api.ts';
import { compilePolicy } from '../compile.ts';
import type { CompileJob, FromCompileWorker } from './compile-protocol.ts';

const port = parentPort;
if (port === null) throw new Error('compile-main.ts runs only as a worker thread');

port.on('message', (job: CompileJob) => {
  void compilePolicy(job.bytes, job.limits)
    // compilePolicy turns every bad policy into a result; what it throws is a configuration bug.
    .catch(
      (err: unknown): CompileResult => ({
        ok: false,
        kind: 'invalid-module',
        message: `compiling the policy failed: ${err instanceof Error ? err.message : String(err)}`,
      }),
    )
    .then((result) => port.postMessage({ type: 'result', id: job.id, result } satisfies FromCompileWorker));
});
// Before the first job; a thread that cannot be lowered (no koffi) still compiles, at its priority.
let tid: number | null = null;
try {
  tid = niceThisThread(BACKGROUND_NICE).tid;
} catch {}
port.postMessage({ type: 'ready', tid } satisfies FromCompileWorker);
