// `capgate serve` as an operator starts it (the package's bin), for tests that need to see it
// either come up or refuse to: resolves with the "serving" line or with the exit.
import type { ChildProcess } from 'node:child_process';
import { CAPGATE_BIN, REPO_ROOT } from '../../cli/support/run-cli.ts';
import { spawnChild } from '../../support/processes/children.ts';

export interface Served {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<number | null>;
}

export type ServeOutcome =
  | { kind: 'serving'; served: Served; adminSocket: string; requestSocket: string; database: string }
  | { kind: 'exited'; code: number | null; output: string };

/**
 * Runs `capgate serve --json <args>`; `umask` is applied to the daemon process (default 022).
 * `command` replaces `node <the repository's bin>` (e.g. an installed copy), `cwd` the repository.
 */
export function serve(
  args: string[],
  o: { env?: NodeJS.ProcessEnv; umask?: number; command?: string[]; cwd?: string } = {},
): Promise<ServeOutcome> {
  const umask = (o.umask ?? 0o022).toString(8).padStart(3, '0');
  const command = o.command ?? [process.execPath, CAPGATE_BIN];
  const quoted = [...command, 'serve', '--json', '--log-level', 'warn', ...args]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const child = spawnChild('sh', ['-c', `umask ${umask}; exec ${quoted}`], {
    cwd: o.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const served: Served = {
    child,
    exited,
    output: () => out,
    stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
  return new Promise<ServeOutcome>((resolve) => {
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      stdout += d.toString();
      // The --json result is pretty-printed ("{" ... "}" on lines of their own); log lines are one-line JSON.
      const m = /(?:^|\n)(\{\n[\s\S]*?\n\})\n/.exec(stdout);
      if (m === null) return;
      const r = JSON.parse(m[1]!) as { adminSocket?: string; requestSocket: string; database: string };
      if (typeof r.adminSocket !== 'string') return; // an error, printed as JSON: the exit resolves
      resolve({
        kind: 'serving',
        served,
        adminSocket: r.adminSocket,
        requestSocket: r.requestSocket,
        database: r.database,
      });
    });
    void exited.then((code) => resolve({ kind: 'exited', code, output: out }));
  });
}
