// Runs a program from the test process in its own process group and collects its output.
// killChildren() (for after-hooks) kills every group still running, so a test that fails or
// times out mid-run leaves nothing behind.
import { spawn } from 'node:child_process';
import type { RunResult } from './vm-root.ts';

const live = new Set<number>();

export function runChild(argv: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid;
    if (pid !== undefined) live.add(pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (status, signal) => {
      if (pid !== undefined) live.delete(pid);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

export function killChildren(): void {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}
