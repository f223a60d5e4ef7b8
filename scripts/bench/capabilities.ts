// Bench section: the real set-memlock (membership check + pidfd sandwich + prlimit) against the
// raw prlimit call (the floor), measured in the same run on a real process tree.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { printTable, sample, type BenchRow } from './table.ts';
import { createLinuxCapabilities } from '../../runtime/capabilities/linux/index.ts';
import { setMemlockRaw } from '../../runtime/os/prlimit.ts';
import { checkMembership } from '../../runtime/identity/membership.ts';
import { readProcStat, readStartTime } from '../../runtime/os/proc-stat.ts';
import { closeFd, openPidfd, pidfdIsAlive } from '../../runtime/os/pidfd.ts';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import type { Capabilities } from '../../runtime/capabilities/capabilities.ts';
import { readPeerCredentials, releasePeerCredentials } from '../../runtime/os/peer-credentials.ts';
import { resolveRequesterVm } from '../../runtime/identity/resolve-requester.ts';

const BYTES = 4n * 1024n * 1024n; // at or below the inherited hard limit: allowed without privilege

function childOf(pid: number): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) return Number(name);
    } catch {
      // Raced with an exit.
    }
  }
  return null;
}

async function waitChild(pid: number): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const c = childOf(pid);
    if (c !== null) return c;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no child of ${pid} appeared`);
}

/** The request path's identity step: peer credentials, then which of N VMs the peer is in. */
async function identityRows(requester: number, own: RegisteredVm): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'capgate-bench-'));
  const server = createServer();
  try {
    const path = join(dir, 'bench.sock');
    server.listen(path);
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect(path);
    const [socket] = await accepted;
    // 49 other VMs (anchored on unrelated live processes) plus the requester's own.
    const others: RegisteredVm[] = Array.from({ length: 49 }, (_, i) => ({
      identity: { ...own.identity, uuid: own.identity.uuid.replace(/..$/, String(i).padStart(2, '0')), id: i + 2 },
      anchor: { rootPid: process.pid, rootStartTime: readStartTime(process.pid)! },
    }));
    const n = 5_000;
    const rows: BenchRow[] = [
      {
        name: 'SO_PEERCRED + SO_PEERPIDFD + release',
        samplesUs: await sample(() => releasePeerCredentials(readPeerCredentials(socket)), n),
      },
      { name: 'resolveRequesterVm, 1 VM', samplesUs: await sample(() => resolveRequesterVm(requester, [own]), n) },
      {
        name: 'resolveRequesterVm, 50 VMs',
        samplesUs: await sample(() => resolveRequesterVm(requester, [...others, own]), n),
      },
    ];
    printTable('identity: request path', rows, 'SO_PEERCRED + SO_PEERPIDFD + release');
    client.destroy();
    socket.destroy();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  // A VM-like tree: launcher -> child -> grandchild ("qemu"); the target is two levels down.
  const tree: ChildProcess = spawn('sh', ['-c', 'sh -c "sleep 600 & wait" & wait'], {
    stdio: 'ignore',
    detached: true,
  });
  try {
    const root = tree.pid!;
    const child = await waitChild(root);
    const target = await waitChild(child);
    const scope: RegisteredVm = {
      identity: { uuid: '3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b13', name: 'bench', id: 1, labels: [] },
      anchor: { rootPid: root, rootStartTime: readStartTime(root)! },
    };
    const evaluation = <T>(calls: (caps: Capabilities) => T): T => {
      const caps = createLinuxCapabilities(scope);
      try {
        return calls(caps);
      } finally {
        caps.release?.();
      }
    };
    const check = (ok: boolean, what: string): void => {
      if (!ok) throw new Error(`bench setup broken: ${what}`);
    };
    check(setMemlockRaw(target, BYTES).ok, 'raw prlimit failed');
    check(
      evaluation((c) => c.queryVmIdentity(target) !== null && c.setMemlock(target, BYTES).ok),
      'query-vm-identity + set-memlock failed',
    );

    const n = 20_000;
    const rows: BenchRow[] = [
      { name: 'raw prlimit (FFI)', samplesUs: await sample(() => setMemlockRaw(target, BYTES), n) },
      {
        name: 'pidfd open + alive + close',
        samplesUs: await sample(() => {
          const fd = openPidfd(target);
          if (fd.ok) {
            pidfdIsAlive(fd.pidfd);
            closeFd(fd.pidfd);
          }
        }, n),
      },
      { name: 'readProcStat (one /proc/<pid>/stat)', samplesUs: await sample(() => readProcStat(target), n) },
      { name: 'membership (ppid walk, depth 2)', samplesUs: await sample(() => checkMembership(target, scope), n) },
      // Each op is one evaluation's Capabilities: created, called, released (pidfds kept per pid).
      {
        name: 'query-vm-identity (sandwich)',
        samplesUs: await sample(() => evaluation((c) => c.queryVmIdentity(target)), n),
      },
      {
        name: 'set-memlock (membership + sandwich)',
        samplesUs: await sample(() => evaluation((c) => c.setMemlock(target, BYTES)), n),
      },
      {
        name: 'query-vm-identity then set-memlock',
        samplesUs: await sample(
          () => evaluation((c) => c.queryVmIdentity(target) !== null && c.setMemlock(target, BYTES).ok),
          n,
        ),
      },
      {
        name: 'prlimit CLI (process per call)',
        samplesUs: await sample(
          () => execFileSync('prlimit', [`--pid=${target}`, `--memlock=${BYTES}:${BYTES}`]),
          100,
          10,
        ),
      },
    ];
    printTable('capabilities: set-memlock on Linux', rows, 'raw prlimit (FFI)');
    await identityRows(target, scope);
  } finally {
    try {
      process.kill(-tree.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
