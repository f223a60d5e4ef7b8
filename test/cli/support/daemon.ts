// A real capgate daemon started with `capgate serve` in a temp directory, and a shell that
// plays a VM: the test registers the shell's pid as the VM root, then has the shell run
// `capgate request ...`, so the daemon sees a requester that really is inside the VM.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CAPGATE_BIN, REPO_ROOT, runCli } from './run-cli.ts';

export interface ServedDaemon {
  dir: string;
  adminSocket: string;
  requestSocket: string;
  stop(): Promise<number | null>;
  output(): string;
}

export async function serveDaemon(): Promise<ServedDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'capgate-serve-'));
  const child = spawn(process.execPath, [CAPGATE_BIN, 'serve', '--run-dir', dir, '--state-dir', dir, '--log-level', 'warn'], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const adminSocket = join(dir, 'admin.sock');
  // Poll for readiness: the sockets exist and the admin socket answers.
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`capgate serve exited early:\n${out}`);
    if (existsSync(adminSocket) && (await runCli(['vm', 'ls', '--socket', adminSocket, '--json'])).code === 0) break;
    if (i > 600) throw new Error(`capgate serve did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    dir,
    adminSocket,
    requestSocket: join(dir, 'request.sock'),
    output: () => out,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A bash process that runs `capgate request set-memlock --pid <its own pid>` on demand. */
export class VmShell {
  readonly child: ChildProcessWithoutNullStreams;
  private buffer = '';

  constructor(requestSocket: string) {
    const script = `while read bytes; do node ${CAPGATE_BIN} request set-memlock --pid $$ --bytes "$bytes" --socket ${requestSocket} --json; echo "exit=$?"; done`;
    this.child = spawn('bash', ['-c', script], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' } });
    this.child.stdout.on('data', (d: Buffer) => (this.buffer += d.toString()));
    this.child.stderr.on('data', (d: Buffer) => (this.buffer += d.toString()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Runs one request from inside the VM; returns the CLI's JSON answer and exit code. */
  async request(bytes: string): Promise<{ code: number; body: { decision: string; reason: string; decisionId: string } }> {
    this.buffer = '';
    this.child.stdin.write(`${bytes}\n`);
    while (!/exit=\d+\n/.test(this.buffer)) await new Promise((r) => setTimeout(r, 50));
    const m = /([\s\S]*)exit=(\d+)\n/.exec(this.buffer)!;
    return { code: Number(m[2]), body: JSON.parse(m[1]!) as { decision: string; reason: string; decisionId: string } };
  }

  /** The shell's real RLIMIT_MEMLOCK, from the kernel. */
  memlock(): Promise<{ soft: string; hard: string }> {
    return import('node:fs/promises').then(async ({ readFile }) => {
      const line = (await readFile(`/proc/${this.pid}/limits`, 'utf8')).split('\n').find((l) => l.startsWith('Max locked memory'))!;
      const [soft, hard] = line.replace('Max locked memory', '').trim().split(/\s+/);
      return { soft: soft!, hard: hard! };
    });
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
