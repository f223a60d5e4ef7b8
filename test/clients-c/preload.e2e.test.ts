// libcapgate-preload.so against a real daemon: a libvirt stand-in (a C program calling plain
// prlimit/setrlimit) runs as uid 65534 inside a registered VM and targets a root-owned "QEMU"
// whose soft limit is below its hard limit. The kernel refuses the stand-in (uid mismatch: this
// machine's root has no CAP_SYS_RESOURCE, so that is the EPERM there is to broker), the shim asks
// capgate, and the daemon (root) sets soft = hard <= the old hard limit. Plus denies, no daemon,
// a daemon that never answers or lies, passthrough, and libvirt's fork-setrlimit-exec path.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCClient, compileCProgram } from '../../scripts/build-c-client.ts';
import type { AuditRecord } from '../../runtime/wire/index.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from '../daemon/helpers/daemon-process.ts';
import { asPolicy, memlockOf, MiB, vmFor } from '../daemon/helpers/fixtures.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { ALLOW, answer, FakeDaemon } from './helpers/fake-daemon.ts';
import { assertClean, buildSanitizedProbe, FIXTURES, SANITIZER_ENV, type ProbeResult } from './helpers/probe.ts';
import { runChild } from './helpers/run-child.ts';
import type { RunResult } from './helpers/vm-root.ts';
import { VmRoot } from './helpers/vm-root-handle.ts';

const NOBODY = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--'];
const SOFT = 1n * MiB;
const HARD = 8n * MiB;

let dir: string;
let daemon: DaemonProcess;
let vmA: VmRoot; // memory-bytes=1 MiB: memlock-cap allows up to 257 MiB
let vmB: VmRoot; // no memory-bytes label: memlock-cap denies every request
let preload: string;
let standinPath: string;
let probe: string;

beforeAll(async () => {
  dir = tempDir('capgate-preload-');
  fs.chmodSync(dir, 0o755); // uid 65534 runs the programs and connects to the sockets in here
  const build = buildCClient(path.join(dir, 'gcc'));
  preload = build.preload;
  standinPath = path.join(dir, 'gcc', 'libvirt-standin');
  // No _FILE_OFFSET_BITS: the stand-in calls prlimit, prlimit64, setrlimit and setrlimit64 by those names.
  compileCProgram({
    sources: [path.join(FIXTURES, 'libvirt-standin.c')],
    out: standinPath,
    flags: ['-std=gnu11', '-O1', '-g', '-Wall', '-Wextra', '-Werror'],
  });
  probe = buildSanitizedProbe(path.join(dir, 'asan')).probe;

  daemon = await spawnDaemon(daemonConfig(dir));
  await daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
  await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
  vmA = await VmRoot.start();
  vmB = await VmRoot.start();
  await daemon.admin.registerVm(vmFor(vmA.pid, 'libvirt-a', [['memory-bytes', String(1n * MiB)]]));
  await daemon.admin.registerVm(vmFor(vmB.pid, 'libvirt-b'));
}, 240_000);

afterAll(async () => {
  await vmA?.stop();
  await vmB?.stop();
  await daemon?.stop();
  removeTempDirs();
});

interface StandinLine {
  call: string;
  self: number;
  rc: number;
  errno: string;
  elapsedMs: number;
  old?: { soft: string; hard: string };
  own?: { soft: string; hard: string };
}

interface StandinRun extends RunResult {
  lines: StandinLine[];
  /** The shim's log lines. */
  log: string[];
}

interface StandinOptions {
  /** Run as uid/gid 65534 (default) or as root. */
  asRoot?: boolean;
  /** Without the shim (to show what the kernel alone answers). */
  bare?: boolean;
  socket?: string;
  timeoutMs?: number;
  /** RLIMIT_MEMLOCK the stand-in starts with. */
  limits?: [bigint, bigint];
}

function env(o: StandinOptions): Record<string, string> {
  const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (o.bare) return base;
  return {
    ...base,
    LD_PRELOAD: preload,
    CAPGATE_REQUEST_SOCKET: o.socket ?? daemon.requestSocket,
    CAPGATE_PRELOAD_LOG: '1',
    ...(o.timeoutMs !== undefined ? { CAPGATE_PRELOAD_TIMEOUT_MS: String(o.timeoutMs) } : {}),
  };
}

function argv(args: string[], o: StandinOptions): string[] {
  const limits = o.limits ? ['prlimit', `--memlock=${o.limits[0]}:${o.limits[1]}`, '--'] : [];
  return [...limits, ...(o.asRoot ? [] : NOBODY), standinPath, ...args];
}

function parse(r: RunResult): StandinRun {
  if (r.status !== 0)
    throw new Error(`the stand-in failed (status ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{"call"'))
    .map((l) => JSON.parse(l) as StandinLine);
  return { ...r, lines, log: r.stderr.split('\n').filter((l) => l.startsWith('capgate-preload')) };
}

/** Runs the stand-in inside `vm`. */
async function standin(vm: VmRoot, args: string[], o: StandinOptions = {}): Promise<StandinRun> {
  return parse(await vm.run(argv(args, o), env(o)));
}

/** Runs the stand-in from the test process: in no VM. */
async function standinOutsideAnyVm(args: string[], o: StandinOptions = {}): Promise<StandinRun> {
  return parse(await runChild(argv(args, o), env(o)));
}

const limitsOf = (pid: number): { soft: string; hard: string } => memlockOf(pid);
const both = (v: bigint): { soft: string; hard: string } => ({ soft: String(v), hard: String(v) });

async function allRecords(): Promise<AuditRecord[]> {
  return (await daemon.admin.queryAudit({ limit: 1000 })).records;
}

async function recordsOf(requesterPid: number): Promise<AuditRecord[]> {
  return (await allRecords()).filter((r) => r.requester.pid === requesterPid);
}

describe('allow: the daemon does what the kernel refused the stand-in', () => {
  it('without the shim the kernel refuses uid 65534 the root-owned target (the premise)', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const r = await standin(vmA, ['prlimit', String(target), String(HARD), String(HARD)], { bare: true });
    expect(r.lines[0]).toMatchObject({ call: 'prlimit', rc: -1, errno: 'EPERM' });
    expect(limitsOf(target)).toEqual({ soft: String(SOFT), hard: String(HARD) });
    await vmA.kill(target);
  });

  it('prlimit: returns 0, the limit is set, and the decision is audited for the stand-in', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const r = await standin(vmA, ['prlimit', String(target), String(HARD), String(HARD)]);
    expect(r.lines[0]).toMatchObject({ call: 'prlimit', rc: 0 });
    expect(limitsOf(target)).toEqual(both(HARD));
    const records = await recordsOf(r.lines[0]!.self);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      requester: { uid: 65534 },
      vm: { name: 'libvirt-a' },
      targetPid: target,
      bytes: String(HARD),
      decision: 'allow',
    });
    expect(r.log).toEqual([
      expect.stringMatching(
        new RegExp(
          `prlimit\\(pid ${target}, RLIMIT_MEMLOCK, 8388608:8388608\\): EPERM from the kernel; capgate allowed \\(decision ${records[0]!.decisionId}\\)$`,
        ),
      ),
    ]);
    await vmA.kill(target);
  });

  it('prlimit64, asking for the old limits: they are the ones before the change', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const r = await standin(vmA, ['prlimit64', String(target), String(HARD), String(HARD), '--old']);
    expect(r.lines[0]).toMatchObject({ call: 'prlimit64', rc: 0, old: { soft: String(SOFT), hard: String(HARD) } });
    expect(limitsOf(target)).toEqual(both(HARD));
    expect(await recordsOf(r.lines[0]!.self)).toEqual([
      expect.objectContaining({ decision: 'allow', targetPid: target }),
    ]);
    await vmA.kill(target);
  });

  it('lowering a hard limit the stand-in may not touch is brokered too', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const r = await standin(vmA, ['prlimit', String(target), String(4n * MiB), String(4n * MiB)]);
    expect(r.lines[0]).toMatchObject({ rc: 0 });
    expect(limitsOf(target)).toEqual(both(4n * MiB));
    await vmA.kill(target);
  });
});

describe('deny, no daemon, timeout, a lying daemon: -1/EPERM and the limit unchanged', () => {
  it('a policy deny (VM without a memory-bytes label)', async () => {
    const target = await vmB.spawnTarget(SOFT, HARD);
    const r = await standin(vmB, ['prlimit', String(target), String(HARD), String(HARD)]);
    expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(limitsOf(target)).toEqual({ soft: String(SOFT), hard: String(HARD) });
    expect(await recordsOf(r.lines[0]!.self)).toEqual([
      expect.objectContaining({ decision: 'deny', reason: 'missing-memory-bytes-label', targetPid: target }),
    ]);
    expect(r.log).toEqual([expect.stringContaining('capgate denied: missing-memory-bytes-label (decision ')]);
    await vmB.kill(target);
  });

  it('over the policy cap', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const r = await standin(vmA, ['prlimit', String(target), String(300n * MiB), String(300n * MiB)]);
    expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(limitsOf(target)).toEqual({ soft: String(SOFT), hard: String(HARD) });
    expect(await recordsOf(r.lines[0]!.self)).toEqual([
      expect.objectContaining({ decision: 'deny', reason: 'over-cap' }),
    ]);
    await vmA.kill(target);
  });

  it('a target in another VM', async () => {
    const target = await vmB.spawnTarget(SOFT, HARD);
    const r = await standin(vmA, ['prlimit', String(target), String(HARD), String(HARD)]);
    expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(limitsOf(target)).toEqual({ soft: String(SOFT), hard: String(HARD) });
    expect(await recordsOf(r.lines[0]!.self)).toEqual([
      expect.objectContaining({ decision: 'deny', reason: 'target-not-in-requester-vm' }),
    ]);
    await vmB.kill(target);
  });

  it('a stand-in in no registered VM', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const r = await standinOutsideAnyVm(['prlimit', String(target), String(HARD), String(HARD)]);
    expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(limitsOf(target)).toEqual({ soft: String(SOFT), hard: String(HARD) });
    expect(await recordsOf(r.lines[0]!.self)).toEqual([
      expect.objectContaining({ decision: 'deny', reason: 'unknown-requester', vm: null }),
    ]);
    await vmA.kill(target);
  });

  it('no daemon: EPERM at once', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const r = await standin(vmA, ['prlimit', String(target), String(HARD), String(HARD)], {
      socket: path.join(dir, 'nobody-listens.sock'),
    });
    expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(limitsOf(target)).toEqual({ soft: String(SOFT), hard: String(HARD) });
    expect(r.log).toEqual([expect.stringContaining('capgate unavailable (ENOENT)')]);
    await vmA.kill(target);
  });

  it('a daemon that never answers: EPERM once the configured timeout has passed', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const fake = await FakeDaemon.start(path.join(dir, 'silent.sock'), async (c) => {
      await c.next();
      await c.closed();
    });
    try {
      const r = await standin(vmA, ['prlimit', String(target), String(HARD), String(HARD)], {
        socket: fake.socketPath,
        timeoutMs: 500,
      });
      expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
      // It waited for the configured 500 ms, not the default 5 s (the bound is that distinction, not speed).
      expect(r.lines[0]!.elapsedMs).toBeGreaterThanOrEqual(495);
      expect(r.lines[0]!.elapsedMs).toBeLessThan(4000);
      expect(fake.requests).toEqual([expect.stringContaining(`{"targetPid":${target},"bytes":"8388608"}`)]);
      expect(r.log).toEqual([expect.stringContaining('capgate unavailable (ETIMEDOUT)')]);
      expect(limitsOf(target)).toEqual({ soft: String(SOFT), hard: String(HARD) });
    } finally {
      await fake.close();
      await vmA.kill(target);
    }
  });

  it('a daemon that answers allow without doing it: the read-back catches it', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const fake = await FakeDaemon.start(path.join(dir, 'liar.sock'), async (c) => {
      if ((await c.next()) !== null) c.end(answer(200, ALLOW, { close: true }));
    });
    try {
      const r = await standin(vmA, ['prlimit', String(target), String(HARD), String(HARD)], {
        socket: fake.socketPath,
      });
      expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
      expect(fake.requests).toHaveLength(1);
      expect(r.log).toEqual([
        expect.stringContaining('capgate allowed, but the limit reads back as 1048576:8388608; failing'),
      ]);
    } finally {
      await fake.close();
      await vmA.kill(target);
    }
  });

  it("a deny reason with control bytes cannot forge lines in the caller's log", async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const fake = await FakeDaemon.start(path.join(dir, 'forger.sock'), async (c) => {
      if ((await c.next()) !== null)
        c.end(
          answer(
            200,
            { decision: 'deny', reason: 'no\ncapgate-preload[1]: FORGED\u001b[31m', decisionId: 'd\r1' },
            { close: true },
          ),
        );
    });
    try {
      const r = await standin(vmA, ['prlimit', String(target), String(HARD), String(HARD)], {
        socket: fake.socketPath,
      });
      expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
      expect(r.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
      expect(r.log).toEqual([
        expect.stringContaining('capgate denied: no?capgate-preload[1]: FORGED?[31m (decision d?1)'),
      ]);
    } finally {
      await fake.close();
      await vmA.kill(target);
    }
  });

  it('a configuration error is reported once at load, and capgate is not asked', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const r = await standin(vmA, ['prlimit', String(target), String(HARD), String(HARD)], {
      socket: `/${'x'.repeat(200)}`,
    });
    expect(r.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(r.stderr).toContain(
      'capgate-preload: CAPGATE_REQUEST_SOCKET is longer than 107 bytes; capgate will not be asked',
    );
    expect(r.log.at(-1)).toContain('not asking capgate: the shim is not configured');
    await vmA.kill(target);
  });
});

describe('passthrough: what the kernel allows, and what is not RLIMIT_MEMLOCK, never reaches capgate', () => {
  it('other resources, calls that succeed on their own, and soft != hard leave no audit record', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const before = (await allRecords()).length;
    // Another resource, refused by the kernel: EPERM straight through.
    const nofile = await standin(vmA, ['prlimit-nofile', String(target), '64', '64']);
    expect(nofile.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(nofile.log).toEqual([]);
    // Calls the kernel allows: the stand-in lowering its own soft limit; root raising the target's soft to its hard.
    const own = await standin(vmA, ['setrlimit', String(4n * MiB), String(HARD)], { limits: [HARD, HARD] });
    expect(own.lines[0]).toMatchObject({ rc: 0, own: { soft: String(4n * MiB), hard: String(HARD) } });
    const rootOnTarget = await standin(vmA, ['prlimit64', String(target), String(HARD), String(HARD)], {
      asRoot: true,
    });
    expect(rootOnTarget.lines[0]).toMatchObject({ rc: 0 });
    expect(limitsOf(target)).toEqual(both(HARD));
    // soft != hard cannot be honoured exactly by capgate (it sets both): refused without asking.
    const target2 = await vmA.spawnTarget(SOFT, HARD);
    const split = await standin(vmA, ['prlimit', String(target2), String(2n * MiB), String(HARD)]);
    expect(split.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(split.log).toEqual([expect.stringContaining('not asking capgate: soft != hard')]);
    expect(limitsOf(target2)).toEqual({ soft: String(SOFT), hard: String(HARD) });
    expect([...own.log, ...rootOnTarget.log]).toEqual([]);
    expect((await allRecords()).length).toBe(before);
    await vmA.kill(target);
    await vmA.kill(target2);
  });
});

describe('before its constructor ran', () => {
  it('passes calls to the kernel as glibc would, and fails an EPERM closed without asking capgate', async () => {
    const early = path.join(dir, 'gcc', 'early-caller.so');
    compileCProgram({
      sources: [path.join(FIXTURES, 'early-caller.c')],
      out: early,
      flags: ['-shared', '-fPIC', '-Wall', '-Wextra', '-Werror'],
    });
    const fake = await FakeDaemon.start(path.join(dir, 'early.sock'), async (c) => {
      if ((await c.next()) !== null) c.end(answer(200, ALLOW, { close: true }));
    });
    try {
      // Preloaded after the shim, early-caller is initialised first.
      const r = await runChild(['/bin/true'], {
        PATH: '/usr/bin:/bin',
        LD_PRELOAD: `${preload} ${early}`,
        CAPGATE_REQUEST_SOCKET: fake.socketPath,
      });
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ raise: -1, raiseErrno: 'EPERM', read: 0, lowered: 0 });
      expect(fake.connections).toBe(0);
    } finally {
      await fake.close();
    }
  });
});

describe('setrlimit and setrlimit64: the caller itself is the target', () => {
  it.each(['setrlimit', 'setrlimit64'])(
    '%s as uid 65534 reaches capgate with its own pid (the kernel then refuses the daemon: no CAP_SYS_RESOURCE here)',
    async (call) => {
      const r = await standin(vmA, [call, String(16n * MiB), String(16n * MiB)], { limits: [SOFT, HARD] });
      const line = r.lines[0]!;
      expect(line).toMatchObject({ call, rc: -1, errno: 'EPERM', own: { soft: String(SOFT), hard: String(HARD) } });
      expect(await recordsOf(line.self)).toEqual([
        expect.objectContaining({
          targetPid: line.self,
          bytes: String(16n * MiB),
          decision: 'deny',
          reason: 'set-memlock-failed: not-permitted',
        }),
      ]);
    },
  );

  it.each(['setrlimit', 'setrlimit64'])(
    '%s allowed: a root-owned stand-in the kernel refuses (seccomp) gets soft = hard',
    async (call) => {
      const bare = await standin(vmA, ['--seccomp', call, String(HARD), String(HARD)], {
        asRoot: true,
        bare: true,
        limits: [SOFT, HARD],
      });
      expect(bare.lines[0]).toMatchObject({ rc: -1, errno: 'EPERM' }); // the premise: the kernel refuses it
      const r = await standin(vmA, ['--seccomp', call, String(HARD), String(HARD)], {
        asRoot: true,
        limits: [SOFT, HARD],
      });
      const line = r.lines[0]!;
      expect(line).toMatchObject({ call, rc: 0, own: both(HARD) });
      expect(await recordsOf(line.self)).toEqual([
        expect.objectContaining({
          requester: expect.objectContaining({ uid: 0 }),
          targetPid: line.self,
          decision: 'allow',
        }),
      ]);
    },
  );
});

describe("libvirt's fork, setrlimit, exec", () => {
  const limitsLine = /^Max locked memory\s+(\S+)\s+(\S+)/m;

  it("allowed between fork and exec: the exec'd program runs with the new limit, and nothing unsafe ran in the child", async () => {
    const r = await standin(
      vmA,
      ['--seccomp', 'fork-exec', String(HARD), String(HARD), '/bin/cat', '/proc/self/limits'],
      { asRoot: true, limits: [SOFT, HARD] },
    );
    expect(r.stdout).not.toContain('POISON');
    const child = r.lines.find((l) => l.call === 'child-setrlimit')!;
    expect(child).toMatchObject({ rc: 0 });
    expect(r.lines.find((l) => l.call === 'fork-exec')).toMatchObject({ rc: 0 });
    expect(limitsLine.exec(r.stdout)?.slice(1)).toEqual([String(HARD), String(HARD)]);
    expect(await recordsOf(child.self)).toEqual([
      expect.objectContaining({ targetPid: child.self, decision: 'allow' }),
    ]);
  });

  it('as uid 65534: the child asks capgate with its own pid, is refused, and execs with its old limit', async () => {
    const r = await standin(vmA, ['fork-exec', String(16n * MiB), String(16n * MiB), '/bin/cat', '/proc/self/limits'], {
      limits: [SOFT, HARD],
    });
    expect(r.stdout).not.toContain('POISON');
    const child = r.lines.find((l) => l.call === 'child-setrlimit')!;
    expect(child).toMatchObject({ rc: -1, errno: 'EPERM' });
    expect(limitsLine.exec(r.stdout)?.slice(1)).toEqual([String(SOFT), String(HARD)]);
    expect(await recordsOf(child.self)).toEqual([
      expect.objectContaining({
        requester: expect.objectContaining({ uid: 65534 }),
        targetPid: child.self,
        decision: 'deny',
      }),
    ]);
  });
});

const unsharePid = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { encoding: 'utf8' });
if (unsharePid.status !== 0)
  console.log(
    `SKIP the shim in a pid namespace: unshare --pid --mount-proc is not permitted here (${(unsharePid.stderr || unsharePid.error?.message || '').trim()})`,
  );

describe.skipIf(unsharePid.status !== 0)('in a pid namespace of its own, as libvirt in a virt-launcher pod', () => {
  // unshare --pid --fork --mount-proc: the stand-in and its "QEMU" see the pod's pids, and /proc
  // is the pod's (the shim reads the limit back from /proc/<pid>/limits by the pod's pid).
  const inPod = (script: string, args: string[]): Promise<StandinRun> =>
    standinRun(vmA, ['unshare', '--pid', '--fork', '--mount-proc', 'sh', '-c', script, 'sh', standinPath, ...args]);
  async function standinRun(vm: VmRoot, command: string[]): Promise<StandinRun> {
    return parse(await vm.run(command, env({})));
  }

  it("prlimit on the pod's pid of a root-owned QEMU: the daemon changes that process, and the shim reads it back", async () => {
    // $1 the stand-in; the target is started in the namespace and named by its pid there ($!).
    const script = [
      `prlimit --memlock=${SOFT}:${HARD} sleep 300 & target=$!`,
      `echo "target $target $(sed -n 's/^NSpid:[[:space:]]*//p' /proc/$target/status)"`,
      `${NOBODY.join(' ')} "$1" prlimit "$target" ${HARD} ${HARD}`,
      `grep '^Max locked memory' /proc/$target/limits; kill $target`,
    ].join('\n');
    const r = await inPod(script, []);
    const nsPid = Number(/^target (\d+)/m.exec(r.stdout)?.[1]);
    expect(nsPid).toBeLessThan(10); // the pod's number, not the node's
    expect(r.lines[0]).toMatchObject({ call: 'prlimit', rc: 0 });
    expect(/^Max locked memory\s+(\S+)\s+(\S+)/m.exec(r.stdout)?.slice(1)).toEqual([String(HARD), String(HARD)]);
    const [record] = (await allRecords())
      .filter((x) => x.targetPid === nsPid && x.vm?.name === 'libvirt-a' && x.targetHostPid !== undefined)
      .slice(0, 1);
    expect(record).toMatchObject({ decision: 'allow', requester: { uid: 65534 } });
    expect(record!.targetHostPid).not.toBe(nsPid);
    expect(record!.capabilityCalls).toContainEqual(
      expect.objectContaining({ op: 'set-memlock', pid: record!.targetHostPid, result: 'ok' }),
    );
  });

  it('between fork and exec the child names itself by its pod pid, and QEMU starts with the new limit', async () => {
    const script = `prlimit --memlock=${SOFT}:${HARD} -- "$1" --seccomp fork-exec ${HARD} ${HARD} /bin/cat /proc/self/limits`;
    const r = await inPod(script, []);
    const child = r.lines.find((l) => l.call === 'child-setrlimit')!;
    expect(child).toMatchObject({ rc: 0 });
    expect(child.self).toBeLessThan(10);
    expect(/^Max locked memory\s+(\S+)\s+(\S+)/m.exec(r.stdout)?.slice(1)).toEqual([String(HARD), String(HARD)]);
    const records = (await allRecords()).filter((x) => x.targetPid === child.self && x.targetHostPid !== undefined);
    expect(records[0]).toMatchObject({ decision: 'allow', targetHostPid: records[0]!.requester.pid });
  });
});

describe('libcapgate (ASan + UBSan) against the real daemon', () => {
  const probeCall = async (vm: VmRoot | null, args: string[]): Promise<ProbeResult[]> => {
    const argvProbe = [probe, 'call', daemon.requestSocket, ...args];
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      CAPGATE_REQUEST_SOCKET: daemon.requestSocket,
      ...SANITIZER_ENV,
    };
    const run = vm ? await vm.run(argvProbe, env) : await runChild(argvProbe, env);
    const results = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ProbeResult);
    assertClean({ ...run, results });
    return results;
  };

  it('allows on one kept connection, each decision audited', async () => {
    const target = await vmA.spawnTarget(SOFT, HARD);
    const results = await probeCall(vmA, [String(target), String(4n * MiB), '--repeat', '3']);
    expect(results.map((r) => [r.rc, r.allow])).toEqual([
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    expect(new Set(results.map((r) => r.decisionId)).size).toBe(3);
    expect(limitsOf(target)).toEqual(both(4n * MiB));
    for (const r of results)
      expect((await daemon.admin.getAuditRecord(r.decisionId)).record).toMatchObject({
        decision: 'allow',
        targetPid: target,
      });
    await vmA.kill(target);
  });

  it("reads the daemon's denies, with their reasons and error kinds", async () => {
    const target = await vmB.spawnTarget(SOFT, HARD);
    expect((await probeCall(vmB, [String(target), String(HARD), '--oneshot']))[0]).toMatchObject({
      rc: 0,
      allow: 0,
      reason: 'missing-memory-bytes-label',
    });
    expect((await probeCall(null, [String(target), String(HARD)]))[0]).toMatchObject({
      rc: 0,
      allow: 0,
      reason: 'unknown-requester',
      errorKind: 'unknown-requester',
    });
    await vmB.kill(target);
  });
});
