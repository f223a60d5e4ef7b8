// Builds the C client (clients/c: libcapgate.so/.a, capgate.pc, libcapgate-preload.so) with its
// Makefile into a directory of the caller's, and compiles programs against it. Used by the
// tests (test/clients-c/) and the daemon benchmark; nothing is written inside the repository.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { packagePath } from '../runtime/bootstrap/package-root.ts';

// Found from the package's root: this file also runs compiled, from dist/scripts/ (the benchmarks).
export const C_CLIENT_DIR = packagePath('clients', 'c');

export interface CClientBuild {
  dir: string;
  cc: string;
  sharedLibrary: string;
  staticLibrary: string;
  preload: string;
  pkgConfig: string;
  /** -I for capgate.h. */
  includeDir: string;
  /** -I for the internal header (white-box test programs only). */
  sourceDir: string;
}

export class CBuildError extends Error {
  override readonly name = 'CBuildError';
}

function run(command: string, args: string[], what: string): string {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new CBuildError(`${what}: cannot run ${command}: ${r.error.message}`);
  if (r.status !== 0) throw new CBuildError(`${what} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

/** Is `command` on PATH? */
export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** `make` in clients/c with BUILD_DIR=`dir`; `extraCflags` go to compile and link (e.g. sanitizers). */
export function buildCClient(dir: string, o: { cc?: string; extraCflags?: string } = {}): CClientBuild {
  const cc = o.cc ?? 'gcc';
  const args = ['-C', C_CLIENT_DIR, '-j2', `BUILD_DIR=${dir}`, `CC=${cc}`];
  if (o.extraCflags !== undefined) args.push(`EXTRA_CFLAGS=${o.extraCflags}`);
  run('make', args, `building clients/c with ${cc}`);
  return {
    dir,
    cc,
    sharedLibrary: path.join(dir, 'libcapgate.so'),
    staticLibrary: path.join(dir, 'libcapgate.a'),
    preload: path.join(dir, 'libcapgate-preload.so'),
    pkgConfig: path.join(dir, 'capgate.pc'),
    includeDir: path.join(C_CLIENT_DIR, 'include'),
    sourceDir: path.join(C_CLIENT_DIR, 'src'),
  };
}

/** Compiles and links one program; returns the compiler's output (warnings). */
export function compileCProgram(o: {
  cc?: string;
  sources: string[];
  out: string;
  flags?: string[];
  libs?: string[];
}): string {
  const cc = o.cc ?? 'gcc';
  return run(
    cc,
    [...(o.flags ?? []), '-o', o.out, ...o.sources, ...(o.libs ?? [])],
    `compiling ${path.basename(o.out)}`,
  );
}
