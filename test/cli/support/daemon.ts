// A real capgate daemon started with `capgate serve` in a temp directory, and a shell that
// plays a VM: the test registers the shell's pid as the VM root, then has the shell run
// `capgate request ...`, so the daemon sees a requester that really is inside the VM.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnChild } from '../../support/processes/children.ts';
import { ChildOutput } from '../../support/wait.ts';
import { CAPGATE_BIN, REPO_ROOT } from './run-cli.ts';

export interface ServedDaemon {
  pid: number;
  dir: string;
  adminSocket: string;
  requestSocket: string;
  stop(): Promise<number | null>;
  output(): string;
}

/** `nodeArgs` go to node before the bin (e.g. a module trace), `env` adds to the environment. */
export async function serveDaemon(
  o: { nodeArgs?: string[]; env?: Record<string, string> } = {},
): Promise<ServedDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'capgate-serve-'));
  const child = spawnChild(
    process.execPath,
    [...(o.nodeArgs ?? []), CAPGATE_BIN, 'serve', '--run-dir', dir, '--state-dir', dir, '--log-level', 'warn'],
    { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1', ...o.env } },
  );
  const out = new ChildOutput(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Printed once both sockets listen.
  const [, adminSocket, requestSocket] = await out.until(
    /capgate serving: admin (\S+), requests (\S+) /,
    '"capgate serving"',
  );
  return {
    pid: child.pid!,
    dir,
    adminSocket: adminSocket!,
    requestSocket: requestSocket!,
    output: () => out.all,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A bash process that runs `capgate request set-memlock --pid <its own pid>` on demand. */
export class VmShell {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly out: ChildOutput;

  constructor(requestSocket: string) {
    const script = `while read bytes; do node ${CAPGATE_BIN} request set-memlock --pid $$ --bytes "$bytes" --socket ${requestSocket} --json; echo "exit=$?"; done`;
    this.child = spawnChild('bash', ['-c', script], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' } });
    this.out = new ChildOutput(this.child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Runs one request from inside the VM; returns the CLI's JSON answer and exit code. */
  async request(
    bytes: string,
  ): Promise<{ code: number; body: { decision: string; reason: string; decisionId: string } }> {
    this.out.clear();
    this.child.stdin.write(`${bytes}\n`);
    const m = await this.out.until(/([\s\S]*)exit=(\d+)\n/, "the request's exit status");
    return { code: Number(m[2]), body: JSON.parse(m[1]!) as { decision: string; reason: string; decisionId: string } };
  }

  /** The shell's real RLIMIT_MEMLOCK, from the kernel. */
  memlock(): Promise<{ soft: string; hard: string }> {
    return import('node:fs/promises').then(async ({ readFile }) => {
      const line = (await readFile(`/proc/${this.pid}/limits`, 'utf8'))
        .split('\n')
        .find((l) => l.startsWith('Max locked memory'))!;
      const [soft, hard] = line.replace('Max locked memory', '').trim().split(/\s+/);
      return { soft: soft!, hard: hard! };
    });
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
