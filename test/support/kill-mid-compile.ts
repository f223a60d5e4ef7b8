// Kills a daemon's compile process while it compiles given bytes, never while it starts: a death
// before its job was handed over is not tied to the bytes (the daemon answers it as a start-up
// failure), so a test about the bytes must kill it mid-compile. The event: the compile launcher
// has written the job to it. The launcher writes little else (a few short messages to the
// daemon before the job), so once its write count (/proc/<pid>/io wchar, sockets included) grew
// by the size of the bytes, the job was sent; the process has them, or all but a socket
// buffer's worth, and compiles. Use bytes that take long to compile (slowPolicy: over a second)
// so that the kill lands before the answer.
import { readFileSync } from 'node:fs';
import { componentFromWat, policyWat } from './components.ts';
import { descendantsRunning, readProc } from './processes/proc-table.ts';
import { waitUntil } from './wait.ts';

/** Resolves once `daemon` has no compile process (it ends a second after its last job). */
export const noCompileProcess = (daemon: number): Promise<void> =>
  waitUntil(
    () => descendantsRunning(daemon, 'compile-main').length === 0,
    'the compile process to exit after its idle second',
  );

/** What `pid` has written so far, to files, pipes and sockets alike (/proc/<pid>/io's wchar). */
export function bytesWrittenBy(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const wchar = /^wchar:\s+(\d+)$/m.exec(io)?.[1];
  if (wchar === undefined) throw new Error(`/proc/${pid}/io has no wchar: ${io}`);
  return Number(wchar);
}

/**
 * A policy that takes over a second to compile (4,000 functions, ~870 KB, under the upload
 * limits: measured 1.6 s warm on an idle machine, against a 5 ms poll), a different one for each
 * `tag`.
 */
export function slowPolicy(tag: number): Promise<Uint8Array> {
  const body = Array.from({ length: 30 }, (_, i) => `(local.set 0 (i32.add (local.get 0) (i32.const ${i})))`).join(' ');
  const functions = Array.from(
    { length: 4000 },
    (_, i) => `(func $f${i} (param i32) (result i32) ${body} (local.get 0))`,
  ).join('\n');
  return componentFromWat(policyWat({ extra: `(global $tag i32 (i32.const ${tag}))\n${functions}` }));
}

/**
 * Resolves once `launcher` has handed a job of `bytes` to its compile process. Call it before
 * that job can have been sent (before the compile is asked for, or once the compile process
 * that last died is gone: the next one loads its pipeline before it takes a job).
 */
export function jobHandedOver(launcher: number, bytes: Uint8Array): Promise<void> {
  const before = bytesWrittenBy(launcher);
  return waitUntil(
    () => bytesWrittenBy(launcher) - before >= bytes.length,
    () =>
      `the launcher to hand a job of ${bytes.length} bytes to its compile process (it wrote ${bytesWrittenBy(launcher) - before})`,
    { intervalMs: 5 },
  );
}

/**
 * Arms a kill -9 of `daemon`'s compile process for the next job of `bytes`, with no compile
 * process running (the job's is then a fresh one: a death counts against bytes only in a
 * process that compiled nothing else); when to call it: jobHandedOver. Resolves with the pid
 * killed, once it is reaped.
 */
export async function killMidCompile(daemon: number, bytes: Uint8Array): Promise<number> {
  const running = descendantsRunning(daemon, 'compile-main');
  if (running.length > 0) throw new Error(`a compile process (${running}) still runs: wait for it to exit first`);
  const launchers = descendantsRunning(daemon, 'launcher-main');
  if (launchers.length !== 1) throw new Error(`expected one compile launcher under ${daemon}, found ${launchers}`);
  await jobHandedOver(launchers[0]!, bytes);
  const compiling = descendantsRunning(daemon, 'compile-main');
  if (compiling.length !== 1) throw new Error(`expected one compile process under ${daemon}, found ${compiling}`);
  process.kill(compiling[0]!, 'SIGKILL');
  await waitUntil(() => readProc(compiling[0]!) === null, 'the killed compile process to be reaped');
  return compiling[0]!;
}
