// A registered VM's root process for the C client tests (libvirt's pod, say): everything it
// spawns is inside the VM. It starts root-owned "QEMU" targets with a chosen RLIMIT_MEMLOCK and
// runs commands (the libvirt stand-in, the client probe) as its children. Every child gets its
// own process group, killed whole when the agent exits or loses its parent.
// Driven over IPC by vm-root-handle.ts.
import { spawn, type ChildProcess } from 'node:child_process';

export type VmRootCommand =
  | { id: number; cmd: 'spawn-target'; soft: string; hard: string }
  | { id: number; cmd: 'run'; argv: string[]; env: Record<string, string> }
  | { id: number; cmd: 'kill'; pid: number }
  | { id: number; cmd: 'exit' };

export interface RunResult {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

const groups = new Set<number>();

function track(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  groups.add(pid);
  child.once('exit', () => groups.delete(pid));
}

function killAll(): void {
  for (const pid of groups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function run(argv: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', (err) => resolve({ status: null, signal: null, stdout, stderr: `${stderr}${err.message}` }));
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

process.on('message', (m: VmRootCommand) => {
  const reply = (value: unknown): void => void process.send!({ id: m.id, value });
  if (m.cmd === 'spawn-target') {
    // util-linux prlimit sets the limits, then execs sleep in the same process.
    const child = spawn('prlimit', [`--memlock=${m.soft}:${m.hard}`, '--', 'sleep', '600'], { detached: true, stdio: 'ignore' });
    track(child);
    child.once('spawn', () => reply({ pid: child.pid }));
  } else if (m.cmd === 'run') {
    void run(m.argv, m.env).then(reply);
  } else if (m.cmd === 'kill') {
    try {
      process.kill(-m.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    reply({});
  } else {
    killAll();
    reply({});
    setTimeout(() => process.exit(0), 10);
  }
});
// The test process went away without saying "exit": leave nothing behind.
process.on('disconnect', () => {
  killAll();
  process.exit(0);
});
process.send!({ id: 0, value: 'ready' });
