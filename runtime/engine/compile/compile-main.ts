// The compile process: runs the upload pipeline (../compile.ts: parse, contract check, upload
// limits, instrumentation, WebAssembly.compile, WIT, trial instantiation) outside the daemon's
// process, one job at a time. The daemon side bounds it in time and memory and ends it once it
// has nothing left to compile (compile-process.ts): the pipeline (binaryen, jco's wasm-tools) costs
// ~100 MB, and its memory goes back to the system only with the process. It runs at a low CPU
// priority (nice 10): an upload (a bomb pushed in a loop, too) takes a core only when the
// daemon's threads do not want it. It is started through compile-launch.ts (no capability on any
// thread) and sandboxes itself (compile-sandbox.ts) once its code is loaded, before its first job:
// the daemon sends no job to a process that says it could not.
import type { CompileJob, CompileResultOnWire, FromCompileProcess } from './compile-protocol.ts';
import { compilePolicyWithCore } from '../compile.ts';
import { BACKGROUND_NICE, niceThisProcess } from '../../os/thread-priority.ts';
import { applyCompileSandbox, compileChannelFd } from './compile-sandbox.ts';

if (process.send === undefined) throw new Error('compile-main.ts runs only as a child process with an IPC channel');
const send = (m: FromCompileProcess): void => void process.send!(m);

// The daemon went away (crashed, or stopped us by closing the channel): nothing to compile for.
process.on('disconnect', () => process.exit(0));

process.on('message', (job: CompileJob) => {
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
        message: `compiling the policy failed: ${err instanceof Error ? err.message : String(err)}`,
      }),
    )
    .then((result) => send({ type: 'result', id: job.id, result }));
});
// Before the first job, and before the sandbox (which refuses setpriority). A process that cannot
// be lowered (no koffi) still compiles, at its priority.
try {
  niceThisProcess(BACKGROUND_NICE);
} catch {}
// Within the turn that registered the handler: no job is read before this returns.
send({ type: 'ready', sandbox: applyCompileSandbox(compileChannelFd()) });
