// Bytes that kill the compile process every time (a crash other than its heap or time limit,
// here a kill -9 while it compiles them) are refused once they have killed it twice, against a
// real daemon (`capgate serve`) and its real compile process: the first death is "try again"
// (503 compiler-unavailable, Retry-After), the second a refusal of the policy (422), so neither
// an admin's retries nor the policy directory's loop for ever, starting compile processes for
// an attacker's bytes. Nothing is stored; other policies still compile; the same bytes compile
// again when asked (a success clears their count).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { CapgateApiError } from '../../runtime/client/errors.ts';
import { runCli } from '../cli/support/run-cli.ts';
import { componentFromWat, policyWat } from '../support/components.ts';
import { killMidCompile, noCompileProcess, slowPolicy } from '../support/kill-mid-compile.ts';
import { serveDaemonForFile } from '../support/served-daemon.ts';

const served = serveDaemonForFile();
let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'capgate-compile-crash-'));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const settled = <T>(p: Promise<T>): Promise<T | unknown> =>
  p.then(
    (v) => v,
    (err: unknown) => err,
  );

describe('bytes that kill the compile process', () => {
  it('the first death is 503 try-again, the second the policy refused (422) with the signal; nothing stored; others compile', async () => {
    const d = served.daemon;
    const admin = new CapgateAdminClient({ socketPath: d.adminSocket, timeoutMs: 120_000 });
    try {
      const crasher = await slowPolicy(1);
      const before = await admin.listPolicies();
      const pushKilled = async (): Promise<unknown> => {
        await noCompileProcess(d.pid);
        const killed = killMidCompile(d.pid, crasher);
        const answer = settled(admin.pushPolicy('crasher', crasher));
        await killed;
        return answer;
      };
      const first = await pushKilled();
      expect(first).toBeInstanceOf(CapgateApiError);
      expect(first).toMatchObject({
        status: 503,
        code: 'compiler-unavailable',
        retryAfterS: 1,
        message: expect.stringMatching(/the compile process died while compiling the policy \(SIGKILL\)/),
      });
      const second = await pushKilled();
      expect(second).toBeInstanceOf(CapgateApiError);
      expect(second).toMatchObject({
        status: 422,
        code: 'invalid-policy',
        kind: 'invalid-module',
        message: expect.stringContaining(
          `the compile process died twice while compiling these bytes (sha256 ${sha256(crasher)}), the last time (SIGKILL). They are refused`,
        ),
      });
      expect((second as CapgateApiError).retryAfterS).toBeUndefined();
      expect(await admin.listPolicies()).toEqual(before);
      // Another policy still compiles, in a fresh compile process.
      const other = await componentFromWat(policyWat({ extra: '(global $other i32 (i32.const 1))' }));
      expect((await admin.pushPolicy('other', other)).created).toBe(true);
      // Not a ban: asked again, the same bytes compile (a transient cause, e.g. the OOM killer
      // twice, passes), and the success clears their count.
      expect((await admin.pushPolicy('crasher', crasher)).created).toBe(true);
    } finally {
      admin.close();
    }
  }, 240_000);

  it('the CLI exits 75 (EX_TEMPFAIL) for the retryable first death, 1 for the refusal', async () => {
    const d = served.daemon;
    const crasher = await slowPolicy(2);
    const file = join(work, 'crasher.wasm');
    writeFileSync(file, crasher);
    const push = async (): ReturnType<typeof runCli> => {
      await noCompileProcess(d.pid);
      const killed = killMidCompile(d.pid, crasher);
      const run = runCli(['policy', 'push', file, '--name', 'cli-crasher', '--socket', d.adminSocket, '--json']);
      await killed;
      return run;
    };
    const first = await push();
    expect(first.code, first.stderr).toBe(75);
    expect(JSON.parse(first.stdout)).toMatchObject({
      error: { kind: 'compiler-unavailable', retryable: true, retryAfterS: 1 },
      exitCode: 75,
    });
    const second = await push();
    expect(second.code, second.stderr).toBe(1);
    expect(JSON.parse(second.stdout)).toMatchObject({
      error: {
        kind: 'invalid-module',
        message: expect.stringMatching(/^the daemon refused: the compile process died twice while compiling/),
      },
      exitCode: 1,
    });
    expect(JSON.parse(second.stdout).error.retryable).toBeUndefined();
  }, 240_000);
});
