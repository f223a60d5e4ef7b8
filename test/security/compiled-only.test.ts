// What ships is compiled JavaScript, and it neither reads from nor writes to TMPDIR or HOME:
// the daemon (with its evaluation workers: every evaluation runs in one here) and the CLI run
// under `strace -f -e trace=%file` with TMPDIR and HOME pointing at directories owned by uid
// 65534, through a whole session: serve, push, bind, register, a request from inside a VM,
// audit. No file syscall may name those directories, and every file the processes create,
// write, remove, rename or chmod is in the daemon's run or state directory.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { CAPGATE_BIN, REPO_ROOT } from '../cli/support/run-cli.ts';
import { asPolicy } from '../daemon/helpers/fixtures.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { NOBODY } from './support/nobody.ts';
import { serve } from './support/serve.ts';
import { runChild, spawnChild, type ChildRun } from '../support/processes/children.ts';

afterAll(removeTempDirs);

const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** Syscalls of %file that change the file system (or may: an open that can create or write). */
const MODIFYING =
  /^(?:open|openat|openat2|creat)\(.*(?:O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND)|^(?:mkdir|mkdirat|unlink|unlinkat|rmdir|rename|renameat|renameat2|link|linkat|symlink|symlinkat|chmod|fchmodat|chown|lchown|fchownat|truncate|mknod|mknodat|utimes|utimensat|futimesat)\(/;

interface Access {
  syscall: string;
  paths: string[];
  modifies: boolean;
  line: string;
}

/** The file syscalls of a strace -f log, with every absolute path they name. */
function accesses(log: string): Access[] {
  const out: Access[] = [];
  for (const raw of fs.readFileSync(log, 'utf8').split('\n')) {
    // "<pid> syscall(args) = result" (pid prefix from -f); resumed halves carry no path.
    const line = raw.replace(/^\d+\s+/, '');
    const m = /^([a-z0-9_]+)\(/.exec(line);
    if (m === null) continue;
    const paths = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((p) => p[1]!).filter((p) => p.startsWith('/'));
    out.push({ syscall: m[1]!, paths, modifies: MODIFYING.test(line), line });
  }
  return out;
}

/** The pid of the one child of `pid` (strace's tracee). */
function childOf(pid: number): number {
  const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  if (children.length !== 1) throw new Error(`expected one child of ${pid}, found ${children.join(', ') || 'none'}`);
  return Number(children[0]);
}

function strace(log: string): string[] {
  return ['strace', '-f', '-qq', '-e', 'trace=%file', '-o', log];
}

describe.skipIf(!hasStrace)('the compiled daemon and CLI', () => {
  it('open nothing in a TMPDIR or HOME owned by another user, and write only in their run and state directories', async () => {
    const base = tempDir('capgate-strace-');
    fs.chmodSync(base, 0o755);
    const foreignTmp = path.join(base, 'tmp-of-65534');
    const foreignHome = path.join(base, 'home-of-65534');
    for (const d of [foreignTmp, foreignHome]) {
      fs.mkdirSync(d, { mode: 0o777 });
      fs.chmodSync(d, 0o777);
      fs.chownSync(d, NOBODY, NOBODY);
    }
    const runDir = path.join(base, 'run');
    const stateDir = path.join(base, 'state');
    const logs = path.join(base, 'logs'); // strace's own output: written by strace, not traced
    fs.mkdirSync(logs);
    const env = { TMPDIR: foreignTmp, HOME: foreignHome, XDG_CACHE_HOME: '', XDG_CONFIG_HOME: '' };
    const cli = (name: string): string[] => [...strace(path.join(logs, `${name}.log`)), process.execPath, CAPGATE_BIN];
    const runTraced = (name: string, args: string[]): Promise<ChildRun> =>
      runChild(cli(name)[0]!, [...cli(name).slice(1), ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });

    const up = await serve(
      [
        '--run-dir',
        runDir,
        '--state-dir',
        stateDir,
        '--config-json',
        JSON.stringify({ engine: { inlineFuel: 0, workers: 1 } }),
      ],
      { env, command: cli('daemon') },
    );
    if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
    const vmRoot = spawnChild(
      'bash',
      [
        '-c',
        `read go; exec ${cli('request').join(' ')} request set-memlock --pid $$ --bytes 4096 --socket ${up.requestSocket} --json`,
      ],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env },
      },
    );
    try {
      const admin = new CapgateAdminClient({ socketPath: up.adminSocket, timeoutMs: 120_000 });
      await admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
      await admin.bind('set-memlock', { policy: 'memlock-cap' });
      await admin.registerVm({
        identity: { uuid: randomUUID(), name: 'traced', id: 1, labels: [['memory-bytes', String(1024 ** 3)]] },
        anchor: { rootPid: vmRoot.pid! },
      });
      admin.close();

      let answer = '';
      vmRoot.stdout!.on('data', (d: Buffer) => (answer += d.toString()));
      const done = new Promise<number | null>((resolve) => vmRoot.once('exit', resolve));
      vmRoot.stdin!.end('go\n');
      expect(await done, answer).toBe(0);
      expect(JSON.parse(answer)).toMatchObject({ decision: 'allow' });

      for (const [name, args] of [
        ['version', ['--version']],
        ['policy-ls', ['policy', 'ls', '-s', up.adminSocket, '--json']],
        ['audit-ls', ['audit', 'ls', '-s', up.adminSocket, '--json']],
      ] as const) {
        const r = await runTraced(name, [...args]);
        expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      }
    } finally {
      vmRoot.kill('SIGKILL');
      // SIGTERM the daemon itself (strace's tracee); strace exits with it.
      process.kill(childOf(up.served.child.pid!), 'SIGTERM');
      expect(await up.served.exited).toBe(0);
    }

    const traced = fs.readdirSync(logs).sort();
    expect(traced).toEqual(['audit-ls.log', 'daemon.log', 'policy-ls.log', 'request.log', 'version.log']);
    const all = traced.flatMap((f) => accesses(path.join(logs, f)).map((a) => ({ ...a, log: f })));
    const foreign = all.filter((a) =>
      a.paths.some(
        (p) =>
          p === foreignTmp || p.startsWith(`${foreignTmp}/`) || p === foreignHome || p.startsWith(`${foreignHome}/`),
      ),
    );
    expect(foreign.map((a) => `${a.log}: ${a.line}`)).toEqual([]);

    const inside = (p: string): boolean => [runDir, stateDir].some((d) => p === d || p.startsWith(`${d}/`));
    const writesOutside = all.filter((a) => a.modifies && a.paths.some((p) => !inside(p)));
    expect(writesOutside.map((a) => `${a.log}: ${a.line}`)).toEqual([]);
    expect(all.filter((a) => a.modifies).length).toBeGreaterThan(5); // the check saw the daemon's own writes
    // The daemon log really shows the engine at work, on compiled code only (the worker loaded its compiled entry).
    expect(
      all.some(
        (a) => a.log === 'daemon.log' && a.paths.some((p) => p.endsWith('/dist/runtime/engine/worker/worker-main.js')),
      ),
    ).toBe(true);
    // The upload compiled in the compile process, from its compiled entry too.
    expect(
      all.some(
        (a) =>
          a.log === 'daemon.log' && a.paths.some((p) => p.endsWith('/dist/runtime/engine/compile/compile-main.js')),
      ),
    ).toBe(true);
    // The effects journal (mapped by the main thread and the worker) is opened in the state directory only.
    const journalOpens = all.filter(
      (a) => a.log === 'daemon.log' && a.paths.some((p) => p.endsWith('-effects-journal')),
    );
    expect(journalOpens.length).toBeGreaterThan(0);
    expect(journalOpens.filter((a) => !a.paths.every((p) => p.startsWith(`${stateDir}/`))).map((a) => a.line)).toEqual(
      [],
    );
    expect(all.filter((a) => a.paths.some((p) => p.endsWith('.ts'))).map((a) => `${a.log}: ${a.line}`)).toEqual([]);
  }, 300_000);
});
