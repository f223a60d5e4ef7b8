// Uploads are compiled off the calling thread, in a compile process (started by a compile
// launcher) with a time limit on its CPU time, and a wall-clock cap above it: a compile that runs
// past its CPU time is stopped and refused (the policy's doing), one that the host starves of CPU
// hits the cap and is told to try again (the host's doing), and the next upload gets a fresh process (the daemon-level hostile tests show the daemon serving while bombs are uploaded). At upload, a timed trial instantiation
// refuses a policy that is slow to instantiate.
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../runtime/engine/engine.ts';
import { trialInstantiation } from '../../../runtime/engine/instantiation-cost.ts';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { CompileProcess, type CompileProcessOptions } from '../../../runtime/engine/compile/compile-process.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { descendantsOf, processTable } from '../../support/processes/proc-table.ts';
import { SCHED_IDLE, SCHED_OTHER } from '../../../runtime/os/thread-priority.ts';
import { processSched, threadSched } from '../../support/processes/thread-sched.ts';
import { threadNices } from '../../support/processes/thread-nice.ts';
import { readProc } from '../../support/processes/proc-table.ts';
import { waitUntil } from '../../support/wait.ts';
import { jobHandedOver, slowPolicy } from '../../support/kill-mid-compile.ts';
import { compileBomb } from '../../support/hostile-policies.ts';
import { readProcStat } from '../../../runtime/os/proc-stat.ts';

/** This process's compile processes (its launchers' children), from /proc (a compile process runs compile-main). */
function compileProcesses(): number[] {
  const table = processTable();
  const below = descendantsOf([process.pid], table);
  return table.filter((p) => below.has(p.pid) && p.cmdline.includes('compile-main')).map((p) => p.pid);
}

const engines: Engine[] = [];
const compilers: CompileProcess[] = [];
afterAll(async () => {
  await Promise.all([...engines.map((e) => e.close()), ...compilers.map((c) => c.close())]);
});

/** A compile process that has compiled a good policy (so it is up), with its pid. */
async function compilerUp(
  options: Partial<CompileProcessOptions>,
): Promise<{ compiler: CompileProcess; good: Uint8Array; pid: number }> {
  const compiler = new CompileProcess(options);
  compilers.push(compiler);
  const good = await componentFromWat(policyWat());
  expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
  return { compiler, good, pid: compiler.pid! };
}

describe('the compile process', () => {
  it('stops a compile past its CPU time limit, refuses it naming that limit, and the next compile gets a fresh process', async () => {
    // A wall-clock cap no loaded machine reaches: only the CPU time limit can stop it.
    const { compiler, good, pid } = await compilerUp({ wallCapFactor: 1000 });
    // ~0.7 s of CPU time to compile; its limit 0.2 s.
    const r = await compiler.compile(await compileBomb(), DEFAULT_LIMITS, 200);
    expect(r).toMatchObject({ ok: false, kind: 'invalid-module' });
    expect(r.ok ? '' : r.message).toMatch(
      /^compiling the policy took more than the compile process's CPU time limit of 0\.2 s \(it had used [\d.]+ s\); it was stopped$/,
    );
    expect(compiler.stopped).toBe(1);
    await waitUntil(() => readProc(pid) === null, 'the stopped process to be gone');
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
    expect(compiler.pid).not.toBe(pid);
  }, 120_000);

  it('a compile process that gets no CPU time hits the wall-clock cap, not the CPU time limit: the host is busy, try again', async () => {
    const { compiler, good, pid } = await compilerUp({ wallCapFactor: 2 });
    // Stopped, as a process that never gets a core: its CPU time stands still.
    process.kill(pid, 'SIGSTOP');
    await waitUntil(() => readProcStat(pid)?.state === 'T', 'the compile process to be stopped');
    const r = await compiler.compile(good, DEFAULT_LIMITS, 1000);
    expect(r).toEqual({
      ok: false,
      kind: 'compiler-unavailable',
      message:
        "compiling the policy did not finish within the compile process's wall-clock cap of 2 s (2x its CPU time limit of 1 s), having had only 0 s of CPU time: the host is too busy; it was stopped, try again",
      retryAfterS: 1,
    });
    expect(compiler.stopped).toBe(1);
    // Killed, stopped as it was; the next compile gets a fresh process.
    await waitUntil(() => readProc(pid) === null, 'the stopped process to be gone');
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
    expect(compiler.pid).not.toBe(pid);
  }, 120_000);

  it('a compile process that does not start within the wall-clock cap is stopped too: the host is busy, try again', async () => {
    const { compiler, good } = await compilerUp({ wallCapFactor: 2 });
    await compiler.idle();
    // The launcher, stopped, never starts the next compile process: its start-up gets no core.
    const launcher = compiler.launcherPid!;
    process.kill(launcher, 'SIGSTOP');
    await waitUntil(() => readProcStat(launcher)?.state === 'T', 'the launcher to be stopped');
    let r: Awaited<ReturnType<CompileProcess['compile']>>;
    try {
      r = await compiler.compile(good, DEFAULT_LIMITS, 1000);
    } finally {
      process.kill(launcher, 'SIGCONT');
    }
    expect(r).toEqual({
      ok: false,
      kind: 'compiler-unavailable',
      message:
        "the compile process did not start within the compile's wall-clock cap of 2 s (2x its CPU time limit of 1 s): the host is too busy; it was stopped, try again",
      retryAfterS: 1,
    });
    // The launcher, running again, starts a fresh process for the next compile.
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
    await compiler.idle();
    expect(compileProcesses()).toEqual([]);
  }, 120_000);

  it('a compile that waited longer than its CPU time limit for a core still compiles: the wait is not its time', async () => {
    const { compiler, good, pid } = await compilerUp({ wallCapFactor: 100 });
    process.kill(pid, 'SIGSTOP');
    await waitUntil(() => readProcStat(pid)?.state === 'T', 'the compile process to be stopped');
    // Held off every core for longer than its 1 s of CPU time (a wall-clock limit would stop it here).
    const asked = performance.now();
    const r = compiler.compile(good, DEFAULT_LIMITS, 1000);
    await waitUntil(() => performance.now() - asked > 1500, '1.5 s of wall time while the process is stopped', {
      intervalMs: 100,
    });
    process.kill(pid, 'SIGCONT');
    expect((await r).ok).toBe(true);
    expect(compiler.stopped).toBe(0);
    expect(compiler.pid).toBe(pid);
  }, 120_000);

  it('ends its process once nothing is left to compile; jobs asked for together share one', async () => {
    const compiler = new CompileProcess();
    compilers.push(compiler);
    const good = await componentFromWat(policyWat());
    const together = await Promise.all([
      compiler.compile(good, DEFAULT_LIMITS),
      compiler.compile(good, DEFAULT_LIMITS),
    ]);
    expect(together.map((r) => r.ok)).toEqual([true, true]);
    expect(compiler.started).toBe(1);
    await compiler.idle();
    expect(compiler.pid).toBeUndefined();
    expect(compileProcesses()).toEqual([]);
    // The next compile starts a fresh process, and a compiled module crossed back usable.
    const again = await compiler.compile(good, DEFAULT_LIMITS);
    if (!again.ok) throw new Error(again.message);
    expect(again.policy.module).toBeInstanceOf(WebAssembly.Module);
    expect(WebAssembly.Module.exports(again.policy.module).map((e) => e.name)).toContain('evaluate');
    expect(compiler.started).toBe(2);
    await compiler.idle();
    expect(compileProcesses()).toEqual([]);
    // One launcher served both, and stays; close() ends it.
    expect(compiler.launchersStarted).toBe(1);
    const launcher = compiler.launcherPid!;
    expect(readProc(launcher)).not.toBeNull();
    await compiler.close();
    expect(readProc(launcher)).toBeNull();
  }, 120_000);

  it('a launcher killed -9 while idle is started again at once, and the next compile is served', async () => {
    const compiler = new CompileProcess();
    compilers.push(compiler);
    const good = await componentFromWat(policyWat());
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
    const [launcher, compile] = [compiler.launcherPid!, compiler.pid!];
    process.kill(launcher, 'SIGKILL');
    await waitUntil(() => readProc(compile) === null, 'its compile process to die with it (parent-death signal)');
    await waitUntil(() => compiler.launchersStarted === 2, 'a new launcher to start');
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
    expect(compiler.launcherPid).not.toBe(launcher);
  }, 120_000);

  it('a launcher that dies young again is started again only after a back-off; a compile meanwhile is refused, to be tried again', async () => {
    // A back-off no test outlasts: the refusal does not depend on how fast this test asks.
    const compiler = new CompileProcess({ launcherBackoffMs: 600_000 });
    compilers.push(compiler);
    const good = await componentFromWat(policyWat());
    await compiler.start();
    process.kill(compiler.launcherPid!, 'SIGKILL');
    await waitUntil(() => compiler.launchersStarted === 2 && compiler.launcherPid !== undefined, 'a new launcher');
    // The first death in a row costs nothing: the next compile is served.
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
    process.kill(compiler.launcherPid!, 'SIGKILL');
    await waitUntil(() => compiler.launcherPid === undefined, 'the second launcher to be seen dead');
    // Not the policy's refusal: "try again", with the seconds left of the back-off.
    expect(await compiler.compile(good, DEFAULT_LIMITS)).toEqual({
      ok: false,
      kind: 'compiler-unavailable',
      message:
        'the policy could not be compiled: the compile launcher died 2 times in a row and is started again in 600 s; try again then (SIGKILL)',
      retryAfterS: 600,
    });
    expect(compiler.launchersStarted).toBe(2);
  }, 120_000);

  it('runs at SCHED_IDLE on every thread of the compile process and of its launcher; the daemon keeps its policy', async () => {
    const compiler = new CompileProcess();
    compilers.push(compiler);
    expect((await compiler.compile(await componentFromWat(policyWat()), DEFAULT_LIMITS)).ok).toBe(true);
    const pid = compiler.pid;
    expect(pid).toBeDefined();
    for (const helper of [pid!, compiler.launcherPid!]) {
      const threads = processSched(helper);
      expect(threads.length).toBeGreaterThan(1);
      expect(new Set(threads.map((t) => t.policy))).toEqual(new Set([SCHED_IDLE]));
    }
    // The main thread (evaluation workers run at EVALUATION_NICE, see worker-priority.test.ts).
    expect(threadSched(process.pid, process.pid)?.policy).toBe(SCHED_OTHER);
    expect(threadNices(process.pid).get(process.pid)).toBe(0);
  }, 120_000);

  it('a compile process killed while idle: the next job is refused with the cause or served by a fresh one, and the daemon lives', async () => {
    const compiler = new CompileProcess();
    compilers.push(compiler);
    const good = await componentFromWat(policyWat());
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
    process.kill(compiler.pid!, 'SIGKILL');
    // Asked before this process has seen the exit: the job goes to a channel that is closed.
    const r = await compiler.compile(good, DEFAULT_LIMITS);
    if (!r.ok)
      expect(r).toMatchObject({
        kind: 'compiler-unavailable',
        message: expect.stringMatching(/the compile process died while compiling the policy \(SIGKILL\).*: try again$/),
        retryAfterS: 1,
      });
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
  }, 120_000);

  it('bytes that kill two fresh compile processes are refused; a process that compiled something else first, a launcher death, and a success in between do not count', async () => {
    const compiler = new CompileProcess();
    compilers.push(compiler);
    const good = await componentFromWat(policyWat());
    await compiler.start();
    /** Compiles `bytes`, killing -9 (`victim`) the compile process or its launcher once it has the job. */
    const killed = async (bytes: Uint8Array, victim: 'compile process' | 'launcher'): Promise<unknown> => {
      await waitUntil(() => compiler.launcherPid !== undefined, 'a launcher');
      const handed = jobHandedOver(compiler.launcherPid!, bytes);
      const answer = compiler.compile(bytes, DEFAULT_LIMITS);
      await handed;
      process.kill(victim === 'launcher' ? compiler.launcherPid! : compiler.pid!, 'SIGKILL');
      return answer;
    };
    const tryAgain = (counted: boolean) => ({
      ok: false,
      kind: 'compiler-unavailable',
      retryAfterS: 1,
      message: counted
        ? 'the compile process died while compiling the policy (SIGKILL); a new one is started: try again (if these bytes kill it again, they are refused)'
        : 'the compile process died while compiling the policy (SIGKILL); a new one is started: try again',
    });
    const crasher = await slowPolicy(100);
    const sha = createHash('sha256').update(crasher).digest('hex');
    // In a process that compiled other bytes first: not counted (it could carry their fault).
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
    expect(await killed(crasher, 'compile process')).toEqual(tryAgain(false));
    // Each retry gets a fresh process: counted, then refused.
    expect(await killed(crasher, 'compile process')).toEqual(tryAgain(true));
    const refusal = await killed(crasher, 'compile process');
    expect(refusal).toEqual({
      ok: false,
      kind: 'invalid-module',
      message: expect.stringMatching(
        new RegExp(
          `^the compile process died twice while compiling these bytes \\(sha256 ${sha}\\), the last time \\(SIGKILL\\)\\. They are refused`,
        ),
      ),
    });
    // A third death is refused too; a success clears the count: the next death is "try again".
    expect(await killed(crasher, 'compile process')).toMatchObject({ kind: 'invalid-module' });
    await compiler.idle();
    expect((await compiler.compile(crasher, DEFAULT_LIMITS)).ok).toBe(true);
    await compiler.idle();
    expect(await killed(crasher, 'compile process')).toEqual(tryAgain(true));
    // A launcher that dies is not the bytes' doing, however often (other bytes: nothing counted yet).
    const other = await slowPolicy(101);
    for (let i = 0; i < 3; i++)
      expect(await killed(other, 'launcher')).toMatchObject({
        ok: false,
        kind: 'compiler-unavailable',
        message: expect.stringMatching(/^the compile launcher died \(SIGKILL\) while compiling the policy/),
      });
  }, 240_000);

  it('a refusal from the compile process is the same as on the calling thread', async () => {
    const engine = new Engine({ workers: 1, linuxCapabilities: false });
    engines.push(engine);
    const bomb = await componentFromWat(policyWat({ extra: '(table 10000000 funcref)' }));
    const inProcess = await engine.compile(bomb);
    const here = await compilePolicy(bomb, DEFAULT_LIMITS);
    expect(inProcess).toEqual(here);
    expect(inProcess.ok).toBe(false);
  }, 120_000);
});

describe('trial instantiation at upload', () => {
  it('measures a policy that instantiates within the limit', async () => {
    const r = await compilePolicy(await componentFromWat(policyWat()), DEFAULT_LIMITS);
    if (!r.ok) throw new Error(r.message);
    expect(r.policy.instantiation).toMatchObject({
      tableEntries: expect.any(Number),
      elementEntries: 0,
      dataBytes: 0,
      globals: expect.any(Number),
    });
    expect(r.policy.instantiation!.trialUs).toBeGreaterThanOrEqual(0);
  });

  it('refuses a policy whose trial instantiation takes the limit or more (injected clock)', async () => {
    const r = await compilePolicy(await componentFromWat(policyWat()), DEFAULT_LIMITS);
    if (!r.ok) throw new Error(r.message);
    let t = 0;
    const clock = (): number => (t += 6); // every instantiation "takes" 6 ms
    expect(() => trialInstantiation(r.policy.module, 5, clock)).toThrow(
      /instantiating the policy took 6\.0 ms in a trial at upload; the limit is 5 ms \(limits\.maxInstantiateMs\)/,
    );
    expect(trialInstantiation(r.policy.module, 7, clock)).toBe(6000);
  });
});
