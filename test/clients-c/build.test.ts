// The C client builds warning-free (-Wall -Wextra -Werror -Wconversion ...) with gcc and clang-14,
// installs a usable pkg-config file, exports only its API, depends on libc alone, and the preload
// shim exports exactly its four unversioned entry points, binds now, and imports nothing that is
// unsafe between fork and exec.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCClient,
  C_CLIENT_DIR,
  compileCProgram,
  hasCommand,
  type CClientBuild,
} from '../../scripts/build-c-client.ts';
import { runChild } from '../support/processes/children.ts';

let dir: string;
let gcc: CClientBuild;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-cbuild-'));
  gcc = buildCClient(path.join(dir, 'gcc'));
}, 120_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function sh(command: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Dynamic symbols: [name, version ('' when unversioned), defined]. */
function dynamicSymbols(file: string): Array<{ name: string; version: string; defined: boolean }> {
  return sh('objdump', ['-T', file])
    .split('\n')
    .map((l) => /^[0-9a-f]+ .{7} (\S+)\s+[0-9a-f]+\s+(?:(\(?[A-Z_0-9.]+\)?|Base)\s+)?(\S+)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({
      name: m[3]!,
      version: m[2] === 'Base' || m[2] === undefined ? '' : m[2].replace(/[()]/g, ''),
      defined: m[1] !== '*UND*',
    }));
}

function needed(file: string): string[] {
  return [...sh('readelf', ['-d', file]).matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]!);
}

describe('libcapgate', () => {
  it('exports exactly its API, with a soname, and needs only libc', () => {
    const lib = fs.realpathSync(gcc.sharedLibrary);
    const exported = dynamicSymbols(lib)
      .filter((s) => s.defined)
      .map((s) => s.name)
      .sort();
    expect(exported).toEqual([
      'capgate_client_free',
      'capgate_client_new',
      'capgate_client_set_memlock',
      'capgate_set_memlock',
      'capgate_strerror',
    ]);
    expect(sh('readelf', ['-d', lib])).toMatch(/\(SONAME\)\s+Library soname: \[libcapgate\.so\.1\]/);
    expect(needed(lib)).toEqual(['libc.so.6']);
  });

  it('builds warning-free with clang-14 too', (ctx) => {
    if (!hasCommand('clang-14')) {
      console.warn('clang-14 is not installed here (.ci/run installs it): the clang build is not checked');
      return ctx.skip();
    }
    const clang = buildCClient(path.join(dir, 'clang'), { cc: 'clang-14' });
    expect(
      fs.existsSync(clang.preload) && fs.existsSync(clang.staticLibrary) && fs.existsSync(clang.sharedLibrary),
    ).toBe(true);
  });

  it('its header compiles alone as strict C99 and as C++', () => {
    const header = path.join(gcc.includeDir, 'capgate.h');
    sh('gcc', ['-std=c99', '-pedantic', '-Wall', '-Wextra', '-Werror', '-fsyntax-only', '-x', 'c', header]);
    if (hasCommand('g++'))
      sh('g++', ['-std=c++11', '-Wall', '-Wextra', '-Werror', '-fsyntax-only', '-x', 'c++', header]);
  });

  it('installs with a pkg-config file that links the example dynamically and statically', async () => {
    const prefix = path.join(dir, 'prefix');
    sh('make', ['-C', C_CLIENT_DIR, `BUILD_DIR=${gcc.dir}`, `PREFIX=${prefix}`, 'install']);
    const pcEnv = { PKG_CONFIG_PATH: path.join(prefix, 'lib/pkgconfig') };
    const flags = sh('pkg-config', ['--cflags', '--libs', 'capgate'], pcEnv).trim();
    expect(flags).toBe(`-I${prefix}/include -L${prefix}/lib -lcapgate`);
    expect(sh('pkg-config', ['--modversion', 'capgate'], pcEnv).trim()).toBe('1.0.0');

    const example = path.join(C_CLIENT_DIR, 'examples/set-memlock.c');
    const dynamic = path.join(dir, 'set-memlock-dynamic');
    compileCProgram({
      sources: [example],
      out: dynamic,
      flags: ['-Wall', '-Wextra', '-Werror', ...flags.split(' ').filter((f) => f.startsWith('-I'))],
      libs: flags.split(' ').filter((f) => !f.startsWith('-I')),
    });
    expect(needed(dynamic)).toContain('libcapgate.so.1');
    const staticExe = path.join(dir, 'set-memlock-static');
    compileCProgram({
      sources: [example],
      out: staticExe,
      flags: ['-Wall', '-Wextra', '-Werror', `-I${prefix}/include`],
      libs: [path.join(prefix, 'lib/libcapgate.a')],
    });
    expect(needed(staticExe)).toEqual(['libc.so.6']);

    // Both run, and both report a missing daemon as the errno and message they promise.
    const missing = path.join(dir, 'no-daemon.sock');
    for (const [exe, env] of [
      [dynamic, { LD_LIBRARY_PATH: path.join(prefix, 'lib') }],
      [staticExe, {}],
    ] as const) {
      const r = await runChild(exe, [String(process.pid), '4096'], {
        env: { ...env, CAPGATE_REQUEST_SOCKET: missing },
      });
      expect(r.code).toBe(3);
      expect(r.stderr).toBe(
        `capgate: no capgate socket at the configured path: cannot connect to ${missing}: ENOENT (is capgate running, and its request socket mounted at this path?)\n`,
      );
    }
  });
});

describe('libcapgate-preload.so', () => {
  it('exports exactly prlimit, prlimit64, setrlimit and setrlimit64, unversioned (they bind every versioned reference)', () => {
    const exported = dynamicSymbols(gcc.preload).filter((s) => s.defined);
    expect(exported.map((s) => s.name).sort()).toEqual(['prlimit', 'prlimit64', 'setrlimit', 'setrlimit64']);
    expect(exported.every((s) => s.version === '')).toBe(true);
  });

  it('binds every symbol at load (no lazy binding, with its lock, after fork) and needs only libc and libdl', () => {
    expect(sh('readelf', ['-d', gcc.preload])).toMatch(/\(FLAGS\)\s+BIND_NOW/);
    expect(needed(gcc.preload).sort()).toEqual(['libc.so.6', 'libdl.so.2']);
  });

  it('imports only async-signal-safe calls, plus what its constructor alone uses', () => {
    const imported = dynamicSymbols(gcc.preload).filter(
      (s) => !s.defined && !/^(_ITM_|__gmon_start__|__cxa_finalize)/.test(s.name),
    );
    // POSIX async-signal-safe (POSIX.1-2017 2.4.3), and errno's location.
    const signalSafe = [
      'socket',
      'connect',
      'getsockopt',
      'send',
      'recv',
      'poll',
      'close',
      'open',
      'read',
      'write',
      'getpid',
      'clock_gettime',
      'nanosleep',
      'memcpy',
      'memcmp',
      'strlen',
      'strchr',
      'strcmp',
      '__errno_location',
    ];
    // syscall(): a register-shuffling stub in glibc, for prlimit64 reads.
    const stubs = ['syscall'];
    const constructorOnly = ['dlsym', 'secure_getenv'];
    const unexpected = imported
      .map((s) => s.name)
      .filter((n) => ![...signalSafe, ...stubs, ...constructorOnly].includes(n));
    expect(unexpected).toEqual([]);
  });

  it('asks for no glibc symbol version newer than 2.17 (it loads into older virt-launcher images)', () => {
    const versions = dynamicSymbols(gcc.preload)
      .map((s) => /^GLIBC_(\d+)\.(\d+)/.exec(s.version))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]) * 1000 + Number(m[2]));
    expect(versions.length).toBeGreaterThan(0);
    expect(Math.max(...versions)).toBeLessThanOrEqual(2017);
  });
});
