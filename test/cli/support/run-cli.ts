// Runs the real `capgate` bin as a child process, as a user or a script would.
import { fileURLToPath } from 'node:url';
import { runChild } from '../../support/processes/children.ts';

export const CAPGATE_BIN = fileURLToPath(new URL('../../../runtime/cli/capgate.mjs', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs any command (npm, a scaffolded project's scripts, ...) and collects its output. No test
 * here expects one to be killed: a signal fails the test, naming it and what the process said
 * (an exit code of null alone told nothing of a one-off kill seen once in a full run). */
export async function runProcess(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; input?: string },
): Promise<CliRun> {
  const r = await runChild(command, args, options);
  if (r.signal !== null)
    throw new Error(
      `${command} ${args.join(' ')} was killed by ${r.signal}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`,
    );
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

export function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<CliRun> {
  return runProcess(process.execPath, [CAPGATE_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env },
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
}
