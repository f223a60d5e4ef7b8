// The compile launcher: a small process the daemon starts once, at start-up while its own
// process is still small, so that its main thread never forks for a compile. Forking copies the
// forking process's page tables under its mmap_lock and libuv then waits for the child's exec:
// 12-50 ms of the daemon's main thread per compile-process start at ~100+ MB (measured), which a
// worker thread's fork would not spare it (the lock is the process's). Here it costs the
// launcher's few tens of MB, on the launcher's thread.
//
// On the daemon's word (launcher-protocol.ts) it starts a compile process (compile-main.ts), one
// at a time, relays jobs to it (read from its stdin: job-frames.ts) and results back, and kills
// it when told. It runs with no capability on any thread and under no_new_privs
// (launcher-launch.ts), which its compile processes inherit; the kernel kills it when the daemon
// goes (PR_SET_PDEATHSIG), and it exits when its channel to the daemon closes. A compile process
// may be running an attacker's code: what it sends is read in bounded frames (frames.ts) and
// checked (compile-reply-check.ts), and a process that sends anything else is killed.
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { spawnNodeProcess } from '../../bootstrap/node-process.ts';
import { setCloseOnExec } from '../../os/inherited-fds.ts';
import { dieWithParent } from '../../os/parent-death.ts';
import { dropPrivilegesOfThisThread } from '../../os/privileges.ts';
import { idleThisProcess } from '../../os/thread-priority.ts';
import type { EngineLimits } from '../limits.ts';
import { BadReply, checkResult, checkSandboxReport, maxResultBytes } from './compile-reply-check.ts';
import { COMPILE_CHANNEL_FD, type CompileJob } from './compile-protocol.ts';
import { applyLauncherSandbox, ipcChannelFd, launcherLandlock, relaunchFailed } from './compile-sandbox.ts';
import { FrameError, FrameReader, frame } from './frames.ts';
import { JobReader, type Job } from './job-frames.ts';
import { MAX_JOB_BYTES, MAX_JOB_HEAD_BYTES, type FromLauncher, type ToLauncher } from './launcher-protocol.ts';

const COMPILE_MAIN = new URL('./compile-main.ts', import.meta.url);
/** The end of a compile process's output kept to say why it died (V8 prints its heap-limit error there). */
const OUTPUT_TAIL_CHARS = 2000;
/** What a `ready` may take: a sandbox report. */
const MAX_READY_BYTES = 64 * 1024;

if (process.send === undefined) throw new Error('launcher-main.ts runs only as a child process with an IPC channel');
const send = (m: FromLauncher): void => void process.send!(m);

dieWithParent(Number(process.env.CAPGATE_DAEMON_PID));
// Its compile processes inherit nothing of the daemon's: not this channel either.
setCloseOnExec(ipcChannelFd());
// SCHED_IDLE (os/thread-priority.ts), on every thread, before the filter: relaying an upload
// takes a core only when the daemon's threads leave it, and the compile processes it forks
// inherit the policy. Not a confinement: a launcher that cannot lower itself still serves.
try {
  idleThisProcess();
} catch {}
// After a re-execution this sets what is already set; without one (nothing to shed) it sets
// no_new_privs for the filter and the compile processes. Then the filter (compile-sandbox.ts),
// which the compile processes inherit too.
const problems: string[] = [];
const relaunch = relaunchFailed();
if (relaunch !== undefined) problems.push(`re-executing it without capabilities failed: ${relaunch}`);
const landlock = launcherLandlock();
if (landlock.problem !== undefined) problems.push(landlock.problem);
try {
  dropPrivilegesOfThisThread();
  const filter = applyLauncherSandbox();
  if (filter !== undefined) problems.push(filter);
} catch (err) {
  problems.push(err instanceof Error ? err.message : String(err));
}

interface Current {
  proc: number;
  child: ChildProcess;
  channel: Socket;
  reader: FrameReader;
  ready: boolean;
  job: { id: number; bytes: Uint8Array; limits: EngineLimits } | undefined;
  output: string;
  why: string | undefined;
}
let current: Current | undefined;

function kill(c: Current, why?: string): void {
  c.why ??= why;
  // Its own child, not yet reaped while this runs (Node reaps in the loop): the pid is still its.
  c.child.kill('SIGKILL');
}

function start(proc: number, maxHeapMb: number): void {
  if (current !== undefined) kill(current);
  let child: ChildProcess;
  try {
    child = spawnNodeProcess(COMPILE_MAIN, [`--max-old-space-size=${maxHeapMb}`, '--max-semi-space-size=16'], {
      // Pipes, not /dev/null: nothing outside the package is opened for it.
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, CAPGATE_LAUNCHER_PID: String(process.pid) },
    });
  } catch (err) {
    const output = err instanceof Error ? err.message : String(err);
    return send({ type: 'exited', proc, code: null, signal: null, output, why: 'it could not be started' });
  }
  const channel = child.stdio[COMPILE_CHANNEL_FD] as Socket;
  const c: Current = {
    proc,
    child,
    channel,
    reader: new FrameReader(MAX_READY_BYTES),
    ready: false,
    job: undefined,
    output: '',
    why: undefined,
  };
  current = c;
  child.stdin?.end();
  for (const out of [child.stdout, child.stderr] as Readable[]) {
    out.setEncoding('utf8');
    out.on('data', (s: string) => (c.output = (c.output + s).slice(-OUTPUT_TAIL_CHARS)));
  }
  channel.on('data', (chunk: Buffer) => onFrames(c, chunk));
  channel.on('error', () => kill(c));
  child.on('error', (err) => (c.output = `${c.output}${err.message}`.slice(-OUTPUT_TAIL_CHARS)));
  // 'close': exited, and its output read to the end.
  child.once('close', (code, signal) => {
    if (current === c) current = undefined;
    send({ type: 'exited', proc, code, signal, output: c.output, ...(c.why !== undefined ? { why: c.why } : {}) });
  });
  if (child.pid !== undefined) send({ type: 'started', proc, pid: child.pid });
}

function onFrames(c: Current, chunk: Buffer): void {
  if (c.why !== undefined) return;
  try {
    for (const m of c.reader.push(chunk)) onMessage(c, m);
  } catch (err) {
    if (!(err instanceof FrameError || err instanceof BadReply)) throw err;
    kill(c, `the launcher killed it: ${err.message}`);
  }
}

function onMessage(c: Current, value: unknown): void {
  const m = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  if (!c.ready) {
    if (m.type !== 'ready') throw new BadReply('its first message is not `ready`');
    c.ready = true;
    return send({ type: 'ready', proc: c.proc, sandbox: checkSandboxReport(m.sandbox) });
  }
  const job = c.job;
  if (m.type !== 'result' || job === undefined || m.id !== job.id)
    throw new BadReply('it sent a message that is not the result of the job it was given');
  c.job = undefined;
  send({ type: 'result', proc: c.proc, id: job.id, result: checkResult(m.result, job.bytes, job.limits) });
}

process.on('message', (m: ToLauncher) => {
  if (m.type === 'start') return start(m.proc, m.maxHeapMb);
  const c = current?.proc === m.proc ? current : undefined;
  if (c !== undefined && m.type === 'stop') kill(c);
  // Otherwise gone already: its `exited` is on its way, or sent.
});

function onJob({ head, bytes }: Job): void {
  const c = current?.proc === head.proc ? current : undefined;
  if (c === undefined) return; // gone already (stopped past its time): its `exited` is on its way, or sent
  if (c.ready && c.job === undefined) {
    c.job = { id: head.id, bytes, limits: head.limits };
    c.reader.maxBytes = maxResultBytes(head.limits);
    c.channel.write(frame({ id: head.id, bytes, limits: head.limits } satisfies CompileJob));
    return;
  }
  kill(c, `the launcher was asked for a job it could not send (ready ${c.ready}, busy ${c.job !== undefined})`);
}

/** The daemon wrote what is not a job: its bug; the stream cannot be read on. The daemon starts another launcher. */
function badJobs(err: unknown): never {
  process.stderr.write(
    `the compile launcher read a bad job from the daemon: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  if (current !== undefined) kill(current);
  process.exit(1);
}

// Jobs come on stdin (job-frames.ts), their bytes raw.
const jobs = new JobReader(MAX_JOB_HEAD_BYTES, MAX_JOB_BYTES);
process.stdin.on('data', (chunk: Buffer) => {
  let got: Job[];
  try {
    got = jobs.push(chunk);
  } catch (err) {
    badJobs(err);
  }
  for (const job of got) onJob(job);
});
process.stdin.on('end', () => {
  try {
    jobs.end();
  } catch (err) {
    badJobs(err);
  }
});
process.stdin.on('error', () => undefined); // the daemon gone: 'disconnect' ends this process
// The daemon went away (or closed the channel to stop it): its compile process goes with it.
process.on('disconnect', () => {
  if (current !== undefined) kill(current);
  process.exit(0);
});
send({
  type: 'launcher-ready',
  landlock: landlock.report,
  ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
});
