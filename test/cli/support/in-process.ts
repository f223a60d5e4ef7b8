// capgate's main() run in the test's own process: what the CLI prints and the exit code main()
// returns, without a Node start-up per command (seconds each on a loaded machine). For tests of
// what the CLI says; the bin itself, as a process, is run by run-cli.ts.
import { main } from '../../../runtime/cli/main.ts';
import type { CliRun } from './run-cli.ts';

/** Runs `capgate <args>` through main(), capturing stdout and stderr; one at a time (it swaps the process's streams' write). */
export async function runInProcess(args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const writes = { out: process.stdout.write, err: process.stderr.write };
  const capture =
    (append: (s: string) => void): typeof process.stdout.write =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      const done = rest.find((r): r is () => void => typeof r === 'function');
      done?.();
      return true;
    };
  process.stdout.write = capture((s) => (stdout += s));
  process.stderr.write = capture((s) => (stderr += s));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
    process.exitCode = undefined; // main() and its commands set it; it is not the worker's
  }
}
