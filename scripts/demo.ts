// `npm run demo`: capgate's main job end to end on an embedded default, with nothing installed
// beyond `npm install`. Starts a real daemon (temporary sockets, SQLite state), uploads the
// memlock-cap policy, registers a real process tree as a VM, and lets a process inside that VM
// ask for memlock changes through the request socket. Every step is the real CLI.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PACKAGE_ROOT } from '../runtime/bootstrap/package-root.ts';
import { buildAssemblyScriptGuests } from './build-guests.ts';

const ROOT = PACKAGE_ROOT;
const CLI = path.join(ROOT, 'runtime', 'cli', 'capgate.mjs');
const POLICY = path.join(ROOT, 'guest-examples', 'assemblyscript', 'build', 'memlock-cap.wasm');

// A fresh private directory (mkdtemp: ours, 0700, a random name); capgate creates its run (0755)
// and state (0700) directories inside it and checks every parent, as it does for /run/capgate.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-demo-'));
fs.chmodSync(dir, 0o755);
const runDir = path.join(dir, 'run');
const stateDir = path.join(dir, 'state');
const adminSocket = path.join(runDir, 'admin.sock');
const requestSocket = path.join(runDir, 'request.sock');

function step(title: string): void {
  console.log(`\n\x1b[1m== ${title}\x1b[0m`);
}

/** Runs the CLI as its own process and shows the command and its output. */
function capgate(args: string[], { quiet = false } = {}): { status: number; stdout: string } {
  if (!quiet) console.log(`$ capgate ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (!quiet) process.stdout.write(r.stdout + r.stderr);
  return { status: r.status ?? 1, stdout: r.stdout };
}

function memlockOf(pid: number): string {
  const line = fs
    .readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max locked memory'));
  const [soft, hard] = (line ?? '').split(/\s+/).slice(3, 5);
  return `soft ${soft ?? '?'}, hard ${hard ?? '?'} bytes`;
}

/** A stand-in for a VM: a root shell (its "launcher") with a long-lived child (its "QEMU").
 * The root runs the commands we feed it, so those run inside the VM as the kernel sees it. */
class FakeVm {
  readonly root: ChildProcessWithoutNullStreams;
  readonly lines: AsyncIterator<string>;
  constructor() {
    this.root = spawn(
      'sh',
      ['-c', 'sleep 600 & echo "$!"; while read -r cmd; do sh -c "$cmd"; echo "__done $?"; done'],
      { stdio: 'pipe' },
    );
    this.lines = createInterface({ input: this.root.stdout })[Symbol.asyncIterator]();
  }
  async qemuPid(): Promise<number> {
    return Number((await this.lines.next()).value);
  }
  async run(args: string[]): Promise<void> {
    console.log(`(inside the VM) $ capgate ${args.join(' ')}`);
    this.root.stdin.write(`${[process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ')}\n`);
    for (;;) {
      const { value, done } = await this.lines.next();
      if (done || String(value).startsWith('__done')) return;
      console.log(value);
    }
  }
}

/** A step the rest depends on failed: said in one line, and the demo exits 1. */
class DemoStopped extends Error {}

let daemon: ChildProcessWithoutNullStreams | undefined;
let vm: FakeVm | undefined;
let qemu: number | undefined;
try {
  step('Build the example policies (AssemblyScript -> core module -> component)');
  for (const g of await buildAssemblyScriptGuests({ onlyIfStale: true }))
    console.log(
      `${g.upToDate ? 'up to date' : 'built'}: ${path.relative(ROOT, g.componentPath)} (${g.componentBytes} bytes)`,
    );

  step('Start the daemon: admin + request sockets and SQLite state in a temporary directory');
  daemon = spawn(
    process.execPath,
    [CLI, 'serve', '--run-dir', runDir, '--state-dir', stateDir, '--log-level', 'warn'],
    { stdio: 'pipe' },
  );
  daemon.stderr.pipe(process.stderr);
  let up = false;
  for (let i = 0; i < 200 && daemon.exitCode === null && daemon.signalCode === null; i++) {
    up = capgate(['policy', 'ls', '-s', adminSocket], { quiet: true }).status === 0;
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Nothing after this step means anything without a daemon: the demo fails here, and says why.
  if (!up) throw new DemoStopped('the daemon did not start (its error is above); the demo stops here');
  console.log(`daemon pid ${daemon.pid}, admin socket ${adminSocket}, request socket ${requestSocket}`);

  step('Upload the memlock-cap policy and bind it to set-memlock');
  capgate(['policy', 'push', POLICY, '--name', 'memlock-cap', '--activate', 'set-memlock', '-s', adminSocket]);

  step('Register a VM: a real process tree, anchored at its root pid (start time checked by the kernel)');
  vm = new FakeVm();
  qemu = await vm.qemuPid();
  const uuid = '6f1c2a8e-7b1d-4c39-9a57-0d5e1f2a3b4c';
  capgate([
    'vm',
    'register',
    '--uuid',
    uuid,
    '--name',
    'demo-vm',
    '--id',
    '1',
    '--label',
    `memory-bytes=${1024 ** 3}`,
    '--pid',
    String(vm.root.pid),
    '-s',
    adminSocket,
  ]);
  console.log(`the VM's "QEMU" is pid ${qemu}; its memlock limit now: ${memlockOf(qemu)}`);

  step('Requests from inside the VM: identity comes from SO_PEERCRED, not from the request');
  await vm.run(['request', 'set-memlock', '--pid', String(qemu), '--bytes', '4Mi', '-s', requestSocket]);
  console.log(`QEMU's memlock limit now: ${memlockOf(qemu)}`);
  await vm.run(['request', 'set-memlock', '--pid', String(qemu), '--bytes', '2Gi', '-s', requestSocket]);
  // Raising the hard limit needs CAP_SYS_RESOURCE: allowed by the policy, refused by the kernel where the daemon lacks it.
  await vm.run(['request', 'set-memlock', '--pid', String(qemu), '--bytes', '1Gi', '-s', requestSocket]);
  await vm.run(['request', 'set-memlock', '--pid', String(process.pid), '--bytes', '4Mi', '-s', requestSocket]);
  console.log(`this demo's own limit (pid ${process.pid}, outside the VM) is untouched: ${memlockOf(process.pid)}`);

  step('A request from a process in no registered VM is refused before any policy runs');
  capgate(['request', 'set-memlock', '--pid', String(qemu), '--bytes', '4Mi', '-s', requestSocket]);

  step('Every decision is in the audit log, committed before the answer was sent');
  capgate(['audit', 'ls', '-s', adminSocket]);
} catch (err) {
  if (!(err instanceof DemoStopped)) throw err;
  console.error(`demo: ${err.message}`);
  process.exitCode = 1;
} finally {
  vm?.root.kill('SIGKILL');
  if (qemu !== undefined) process.kill(qemu, 'SIGKILL');
  daemon?.kill('SIGTERM');
  await new Promise((r) => (daemon && daemon.exitCode === null ? daemon.once('exit', r) : r(undefined)));
  fs.rmSync(dir, { recursive: true, force: true });
}
