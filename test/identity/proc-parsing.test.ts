// /proc/<pid>/stat, /proc/<pid>/cgroup and mountinfo parsing, against real processes where possible.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseProcStat, readProcStat, readStartTime } from '../../runtime/os/proc-stat.ts';
import { isCgroupAtOrBelow, parseProcCgroup } from '../../runtime/os/proc-cgroup.ts';
import { readCgroupPath } from '../../runtime/os/host-cgroup-path.ts';
import {
  cgroupDirectory,
  detectCgroup2Mount,
  parseCgroup2Mount,
  parseCgroup2Mounts,
} from '../../runtime/os/cgroup-mount.ts';
import { climbDepth, resolveCgroupView, toHostCgroupPath } from '../../runtime/os/cgroup-namespace.ts';
import { normalizeCgroupPath } from '../../runtime/identity/cgroup-path.ts';
import { isValidPid, pidMax } from '../../runtime/os/pid.ts';
import { deadPid, spawnShell } from './support/processes.ts';
import { waitFor } from '../support/wait.ts';

describe('/proc/<pid>/stat', () => {
  it('parses a process whose comm contains spaces and parentheses', async () => {
    // comm is the executable's basename: make one that tries to fake the following fields.
    const dir = mkdtempSync(join(tmpdir(), 'capgate-comm-'));
    const exe = join(dir, 'x) R 1 (y');
    symlinkSync('/bin/sleep', exe);
    const child = spawnShell(`exec '${exe}' 300`);
    const stat = await waitFor(() => {
      const s = readProcStat(child.pid);
      return s?.comm === 'x) R 1 (y' ? s : undefined;
    }, 'sh to exec the program');
    expect(stat).toMatchObject({ pid: child.pid, comm: 'x) R 1 (y', ppid: process.pid });
    const raw = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const field22 = raw.slice(raw.lastIndexOf(')') + 2).split(' ')[19];
    expect(stat!.startTime).toBe(Number(field22));
    expect(readStartTime(child.pid)).toBe(stat!.startTime);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads our own process and refuses garbage and dead pids', async () => {
    expect(readProcStat(process.pid)).toMatchObject({ pid: process.pid, ppid: process.ppid });
    expect(readStartTime(await deadPid())).toBeNull();
    expect(parseProcStat('')).toBeNull();
    expect(parseProcStat('12 no-parens R 1')).toBeNull();
    expect(parseProcStat('12 (short) R 1 2')).toBeNull();
  });

  it('takes state, ppid and start time from after the last ")" of synthetic hostile lines', () => {
    // Fields 5..21 as the kernel prints them, then start time (22) and a few more.
    const middle = '7 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0';
    const line = (comm: string, tail = ' 987654 1 2 3\n'): string => `4242 (${comm}) S 17 ${middle}${tail}`;
    for (const comm of ['sleep', 'x) R 1 (y', ') ) )', 'a b c', '12 (13) R 99 1', '', 'tab\there', 'ünï']) {
      expect(parseProcStat(line(comm)), comm).toEqual({ pid: 4242, comm, state: 'S', ppid: 17, startTime: 987654 });
    }
    // comm may hold a newline too (PR_SET_NAME takes any byte but NUL).
    expect(parseProcStat(line('a\nb'))).toMatchObject({ comm: 'a\nb', ppid: 17, startTime: 987654 });
    expect(parseProcStat(line('x', ' 987654'))).toMatchObject({ startTime: 987654 }); // no trailing newline
    expect(parseProcStat(line('x', ''))).toBeNull(); // no field 22
    expect(parseProcStat(`4242 (x) S -5 ${middle} 987654\n`)).toBeNull(); // ppid not a count
    expect(parseProcStat(`4242 (x) S 17 ${middle} 98x654\n`)).toBeNull();
    expect(parseProcStat(`4242 (x) S 17 ${middle} 99999999999999999999\n`)).toBeNull(); // beyond 2^53
    expect(parseProcStat(`pid (x) S 17 ${middle} 987654\n`)).toBeNull();
    expect(parseProcStat(`4242 x) S 17 ${middle} 987654\n`)).toBeNull();
  });

  it('agrees with a plain split parse on every process in /proc', () => {
    const reference = (text: string): { ppid: number; startTime: number; state: string } => {
      const rest = text
        .slice(text.lastIndexOf(')') + 2)
        .trim()
        .split(' ');
      return { state: rest[0]!, ppid: Number(rest[1]), startTime: Number(rest[19]) };
    };
    let compared = 0;
    for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      let text: string;
      try {
        text = readFileSync(`/proc/${name}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      expect(parseProcStat(text), text).toMatchObject({ pid: Number(name), ...reference(text) });
      compared++;
    }
    expect(compared).toBeGreaterThan(3);
  });

  it('validates pids against pid_max', () => {
    const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    expect(pidMax()).toBe(max);
    expect(isValidPid(1)).toBe(true);
    expect(isValidPid(max - 1)).toBe(true);
    for (const bad of [0, -1, max, max + 1, 1.5, Number.NaN, '12', 0xffff_ffff])
      expect(isValidPid(bad), String(bad)).toBe(false);
  });
});

describe('cgroups', () => {
  it('takes the v2 line of a hybrid /proc/<pid>/cgroup', () => {
    const hybrid = '9:name=systemd:/\n4:memory:/process_api/abc\n0::/kubepods/pod1/ctr\n';
    expect(parseProcCgroup(hybrid)).toBe('/kubepods/pod1/ctr');
    expect(parseProcCgroup('4:memory:/x\n')).toBeNull();
    expect(parseProcCgroup('0::/gone (deleted)\n')).toBeNull();
    expect(readCgroupPath(process.pid)).toBe(parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8')));
  });

  it('compares paths by segment', () => {
    expect(isCgroupAtOrBelow('/a/b', '/a')).toBe(true);
    expect(isCgroupAtOrBelow('/a', '/a')).toBe(true);
    expect(isCgroupAtOrBelow('/ab', '/a')).toBe(false);
    expect(isCgroupAtOrBelow('/', '/a')).toBe(false);
  });

  it('finds the cgroup2 mount (hybrid: /sys/fs/cgroup/unified) from mountinfo', () => {
    const hybrid = [
      '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    expect(parseCgroup2Mount(hybrid)).toEqual({ mountPoint: '/sys/fs/cgroup/unified', root: '/' });
    expect(parseCgroup2Mount('41 31 0:38 /pod /sys/fs/my\\040cg rw - cgroup2 cgroup2 rw')).toEqual({
      mountPoint: '/sys/fs/my cg',
      root: '/pod',
    });
    expect(parseCgroup2Mount('35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory')).toBeNull();

    const real = detectCgroup2Mount();
    const line = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.includes(' - cgroup2 '));
    expect(real?.mountPoint).toBe(line?.split(' ')[4]);

    expect(cgroupDirectory({ mountPoint: '/m', root: '/' }, '/a/b')).toBe('/m/a/b');
    expect(cgroupDirectory({ mountPoint: '/m', root: '/pod' }, '/pod/c')).toBe('/m/c');
    expect(cgroupDirectory({ mountPoint: '/m', root: '/pod' }, '/other')).toBeNull();
  });

  it('reads every cgroup2 mount, and tells a mount of the whole hierarchy seen from a cgroup namespace', () => {
    const inPod = [
      '41 31 0:38 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw', // the runtime's mount: the namespace's own tree
      '52 31 0:38 /../../.. /host/sys/fs/cgroup ro - cgroup2 cgroup2 rw', // the hostPath volume: the node's whole tree
      '53 31 0:38 /../sibling /x ro - cgroup2 cgroup2 rw',
    ].join('\n');
    expect(parseCgroup2Mounts(inPod).map((m) => m.root)).toEqual(['/', '/../../..', '/../sibling']);
    expect(['/', '/..', '/../../..', '/../sibling', '/a', '/..x', ''].map(climbDepth)).toEqual([
      0,
      1,
      3,
      null,
      null,
      null,
      null,
    ]);
  });

  it("turns a path /proc wrote in a cgroup namespace into the node's, and refuses one that climbs above the root", () => {
    const nsRoot = '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podA.slice/cri-containerd-1.scope';
    expect(toHostCgroupPath('/', nsRoot)).toBe(nsRoot);
    expect(toHostCgroupPath('/../../kubepods-burstable-podB.slice/cri-containerd-2.scope', nsRoot)).toBe(
      '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podB.slice/cri-containerd-2.scope',
    );
    expect(toHostCgroupPath('/../../../../init.scope', nsRoot)).toBe('/init.scope');
    expect(toHostCgroupPath('/../../../..', nsRoot)).toBe('/');
    expect(toHostCgroupPath('/../../../../..', nsRoot)).toBeNull();
    expect(toHostCgroupPath('/a/./b', '/')).toBe('/a/b');
    expect(toHostCgroupPath('relative', '/')).toBeNull();
  });

  it("sees the node's own namespace here: the whole hierarchy, rooted at /", () => {
    expect(resolveCgroupView()).toEqual({
      kind: 'resolved',
      nsRoot: '/',
      mountPoint: detectCgroup2Mount()?.mountPoint ?? null,
    });
  });

  it('normalises registered cgroup paths and refuses unsafe ones', () => {
    expect(normalizeCgroupPath('/kubepods//pod1/./ctr/')).toEqual({ ok: true, path: '/kubepods/pod1/ctr' });
    for (const [bad, says] of [
      ['kubepods', 'absolute'],
      ['/a/../b', '..'],
      ['/', 'root cgroup'],
      ['//.', 'root cgroup'],
      ['/a\nb', 'control'],
      [42, 'string'],
    ] as const) {
      const r = normalizeCgroupPath(bad);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toContain(says);
    }
  });
});
