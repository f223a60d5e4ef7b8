// Bench section: translating a target pid from a requester's pid namespace (a real one, made with
// unshare --pid --fork) to the daemon's, by the cases the request path meets, against one NSpid
// read (the unit every search pays per candidate), measured in the same run.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { printTable, sample, type BenchRow } from './table.ts';
import { readNsPid } from '../../runtime/os/proc-nspid.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { translateTargetPid, TranslationCache } from '../../runtime/identity/target-translation.ts';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // Raced with an exit.
    }
  }
  return out;
}

async function waitChildren(pid: number, n: number): Promise<number[]> {
  for (let i = 0; i < 500; i++) {
    const c = childrenOf(pid);
    if (c.length >= n) return c;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`pid ${pid} did not get ${n} children`);
}

export async function run(): Promise<void> {
  if (spawnSync('unshare', ['--pid', '--fork', 'true']).status !== 0) {
    console.log('\npid namespaces: skipped, unshare --pid is not permitted here');
    return;
  }
  const root = spawn('sh', ['-c', "unshare --pid --fork sh -c 'sleep 600 & wait' & wait"], {
    stdio: 'ignore',
    detached: true,
  });
  try {
    const [unshare] = await waitChildren(root.pid!, 1);
    const [init] = await waitChildren(unshare!, 1);
    await waitChildren(init!, 1);
    const vm: RegisteredVm = {
      identity: { uuid: '3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b13', name: 'bench', id: 1, labels: [] },
      anchor: { rootPid: root.pid!, rootStartTime: readStartTime(root.pid!)! },
    };
    const inNs = { pid: init!, startTime: readStartTime(init!)! };
    const onHost = { pid: unshare!, startTime: readStartTime(unshare!)! };
    // As the daemon keeps it: a found target's membership reused for request.identityCacheMs (1 s by default).
    const cache = new TranslationCache(undefined, 1000);
    const walking = new TranslationCache();
    const processes = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;
    const rows: BenchRow[] = [
      { name: 'one NSpid read (/proc/<pid>/status)', samplesUs: await sample(() => readNsPid(init!), 2000) },
      {
        name: "requester in the daemon's namespace",
        samplesUs: await sample(() => translateTargetPid(onHost, vm, 2), 2000),
      },
      {
        name: 'requester names itself (fork-exec path)',
        samplesUs: await sample(() => translateTargetPid(inNs, vm, 1), 2000),
      },
      {
        name: 'found before (cache, as the daemon keeps it)',
        samplesUs: await sample(() => translateTargetPid(inNs, vm, 2, { cache }), 2000),
      },
      {
        name: 'found before, its membership walked each time',
        samplesUs: await sample(() => translateTargetPid(inNs, vm, 2, { cache: walking }), 2000),
      },
      {
        name: `search of /proc (${processes} processes), found`,
        samplesUs: await sample(() => translateTargetPid(inNs, vm, 2), 100, 10),
      },
      {
        name: `search of /proc (${processes} processes), nothing`,
        samplesUs: await sample(() => translateTargetPid(inNs, vm, 99), 100, 10),
      },
    ];
    printTable(
      'pid namespaces: translating a target pid (wall time; a search yields every 32 candidates)',
      rows,
      'one NSpid read (/proc/<pid>/status)',
    );
    cache.close();
    walking.close();
  } finally {
    process.kill(-root.pid!, 'SIGKILL');
  }
}
