// A registered VM's root process for the C client tests (libvirt's pod, say): everything it
// spawns is inside the VM. It starts root-owned "QEMU" targets with a chosen RLIMIT_MEMLOCK and
// runs commands (the libvirt stand-in, the client probe) as its children. Every child gets its
// own process group, killed whole when the agent exits or loses its parent.
// Driven over IPC by vm-root-handle.ts.
import { killChildrenNow, runChild, spawnChild } from '../../support/processes/children.ts';

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

async function run(argv: string[], env: Record<string, string>): Promise<RunResult> {
  try {
    const r = await runChild(argv[0]!, argv.slice(1), { env });
    return { status: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    return { status: null, signal: null, stdout: '', stderr: err instanceof Error ? err.message : String(err) };
  }
}

process.on('message', (m: VmRootCommand) => {
  const reply = (value: unknown): void => void process.send!({ id: m.id, value });
  if (m.cmd === 'spawn-target') {
    // util-linux prlimit sets the limits, then execs sleep in the same process.
    const child = spawnChild('prlimit', [`--memlock=${m.soft}:${m.hard}`, '--', 'sleep', '600'], { stdio: 'ignore' });
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
    killChildrenNow();
    process.send!({ id: m.id, value: {} }, () => process.exit(0));
  }
});
// The test process went away without saying "exit": leave nothing behind (the 'exit' handler
// of children.ts kills them).
process.on('disconnect', () => process.exit(0));
process.send!({ id: 0, value: 'ready' });
