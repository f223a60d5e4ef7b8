// The compile process: runs the upload pipeline (../compile.ts: parse, contract check, upload
// limits, instrumentation, WebAssembly.compile, WIT, trial instantiation) outside the daemon's
// process, one job at a time. The daemon bounds it in time and memory and ends it once it has
// nothing left to compile (compile-process.ts): the pipeline (binaryen, jco's wasm-tools) costs
// ~100 MB, and its memory goes back to the system only with the process. It runs at the lowest
// CPU priority, SCHED_IDLE, on every thread: an upload (a bomb pushed in a loop, too) takes a
// core only when the daemon's threads do not want it. The compile launcher (launcher-main.ts) starts it, already
// without capabilities and under no_new_privs; it sandboxes itself (compile-sandbox.ts) once
// its code is loaded, before its first job: the daemon sends no job to a process that says it
// could not. Jobs and results cross COMPILE_CHANNEL_FD in frames (frames.ts), read only once
// the handler below is registered (a socket without one is not read).
import { Socket } from 'node:net';
import type { CompileJob, CompileResultOnWire, FromCompileProcess } from './compile-protocol.ts';
import { COMPILE_CHANNEL_FD } from './compile-protocol.ts';
import { compilePolicyWithCore, loadCompilePipeline } from '../compile.ts';
import { BACKGROUND_NICE, idleThisProcess, niceThisProcess } from '../../os/thread-priority.ts';
import { dieWithParent } from '../../os/parent-death.ts';
import { applyCompileSandbox } from './compile-sandbox.ts';
import { frame, FrameReader } from './frames.ts';

/** A job is a component of at most limits.maxModuleBytes (256 MiB at most) and the limits. */
const MAX_JOB_BYTES = 257 * 1024 * 1024;

// With the launcher gone, nothing is left to compile for, whatever this process is doing.
dieWithParent(Number(process.env.CAPGATE_LAUNCHER_PID));
const channel = new Socket({ fd: COMPILE_CHANNEL_FD, readable: true, writable: true });
const send = (m: FromCompileProcess): void => void channel.write(frame(m));
channel.on('end', () => process.exit(0));
channel.on('error', () => process.exit(1));

function compile(job: CompileJob): void {
  void compilePolicyWithCore(job.bytes, job.limits)
    .then(({ result, core }): CompileResultOnWire => {
      if (!result.ok) return result;
      if (core === undefined) throw new Error('the compile step gave no core module (engine bug)');
      const { module: _module, ...policy } = result.policy;
      return { ok: true, policy, core };
    })
    // compilePolicy turns every bad policy into a result; what it throws is a configuration bug.
    .catch(
      (err: unknown): CompileResultOnWire => ({
        ok: false,
        kind: 'invalid-module',
        message: `compiling the policy failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 1000),
      }),
    )
    .then((result) => send({ type: 'result', id: job.id, result }));
}

// Before the first job, and before the sandbox (which refuses sched_setscheduler and setpriority):
// inherited from the launcher already, said again for every thread. A process that cannot be
// lowered so (no koffi) tries nice 10, and still compiles, at its priority.
try {
  idleThisProcess();
} catch {
  try {
    niceThisProcess(BACKGROUND_NICE);
  } catch {}
}
// What the pipeline reads after its modules load (jco's wasm files), read now: the sandbox then
// takes every file away.
await loadCompilePipeline();
const jobs = new FrameReader(MAX_JOB_BYTES);
channel.on('data', (chunk: Buffer) => {
  let received: unknown[];
  try {
    received = jobs.push(chunk);
  } catch {
    process.exit(1); // the launcher speaks frames; anything else is not a job
  }
  for (const job of received) compile(job as CompileJob);
});
// Within the turn that registered the handler: no job is read before this returns.
send({ type: 'ready', sandbox: applyCompileSandbox(COMPILE_CHANNEL_FD) });
