// The seccomp program runtime/os/seccomp-filter.ts assembles, installed by a small C program on
// itself (no Node in the way), then one call: what the program returns for each, and that a call
// through another ABI on the same CPU (i386's int 0x80, x32) kills the process instead of being
// read as the x86_64 call of the same number.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileCProgram, hasCommand } from '../../scripts/build-c-client.ts';
import { EPERM } from '../../runtime/os/errno.ts';
import { syscallFilter } from '../../runtime/os/seccomp-filter.ts';
import { syscallArch } from '../../runtime/os/syscall-numbers.ts';
import { runChild } from '../support/processes/children.ts';

const SOURCE = fileURLToPath(new URL('./fixtures/filter-probe.c', import.meta.url));
const arch = syscallArch();
const cc = hasCommand('gcc');
if (!cc) console.log('gcc is missing: the seccomp program is not run in a C probe');

let dir: string;
let probe: string;
let filter: string;

beforeAll(() => {
  if (!cc || arch === undefined) return;
  dir = mkdtempSync(join(tmpdir(), 'capgate-seccomp-'));
  probe = join(dir, 'filter-probe');
  compileCProgram({ sources: [SOURCE], out: probe, flags: ['-O1', '-Wall'] });
  filter = join(dir, 'filter.bpf');
  writeFileSync(join(dir, 'file'), 'x');
  writeFileSync(
    filter,
    syscallFilter(arch, [
      { syscall: 'openat', allowWhen: [{ arg: 2, noneOf: 0o1 | 0o2 | 0o100 | 0o1000 }], errno: EPERM },
      { syscall: 'kill', allowWhen: [{ arg: 0, in: [0x7fff_ffff] }], errno: EPERM },
    ]),
  );
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function probeCall(what: string): Promise<{ out: string; signal: NodeJS.Signals | null; code: number | null }> {
  const r = await runChild(probe, [filter, what, join(dir, 'file')]);
  return { out: r.stdout.trim(), signal: r.signal, code: r.code };
}

describe.skipIf(!cc || process.arch !== 'x64')('a seccomp program from seccomp-filter.ts, on x86_64', () => {
  it('lets through what no rule names, and what a rule allows', async () => {
    expect(await probeCall('getpid')).toMatchObject({ out: expect.stringMatching(/^ok \d+$/), code: 0 });
    expect(await probeCall('open-read')).toMatchObject({ out: expect.stringMatching(/^ok \d+$/), code: 0 });
  });

  it('refuses a call whose argument a rule refuses, with its errno; the upper half of an int argument changes nothing', async () => {
    expect(await probeCall('open-write')).toMatchObject({ out: `errno ${EPERM}`, code: 0 });
    // The kernel reads the low 32 bits (O_WRONLY): refused, as the filter reads the same half.
    expect(await probeCall('open-write-high')).toMatchObject({ out: `errno ${EPERM}`, code: 0 });
    expect(await probeCall('kill-other')).toMatchObject({ out: `errno ${EPERM}`, code: 0 });
  });

  it('kills a process that calls through the i386 or x32 ABI', async () => {
    const i386 = await probeCall('i386-getpid');
    if (i386.signal === 'SIGSEGV') console.log('this kernel has no i386 emulation: int 0x80 faults before any filter');
    else expect(i386).toMatchObject({ out: '', signal: 'SIGSYS' });
    expect(await probeCall('x32-getpid')).toMatchObject({ out: '', signal: 'SIGSYS' });
  });
});
