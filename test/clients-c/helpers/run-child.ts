// Runs a program from the test process (a registered child, see test/support/processes/) and
// collects its output, without blocking the event loop (fake daemons live in it).
import { runChild as run } from '../../support/processes/children.ts';
import type { RunResult } from './vm-root.ts';

export async function runChild(argv: string[], env: Record<string, string>): Promise<RunResult> {
  const r = await run(argv[0]!, argv.slice(1), { env });
  return { status: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}
