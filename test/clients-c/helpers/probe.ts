// Builds libcapgate with AddressSanitizer and UBSan (any error aborts) and the client probe
// against it, and runs the probe without blocking the event loop (fake daemons live in it).
import fs from 'node:fs';
import path from 'node:path';
import { buildCClient, compileCProgram, type CClientBuild } from '../../../scripts/build-c-client.ts';
import { REPO_ROOT } from '../../daemon/helpers/daemon-process.ts';
import { runChild } from './run-child.ts';
import type { RunResult } from './vm-root.ts';

export const SANITIZE = '-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer';
export const FIXTURES = path.join(REPO_ROOT, 'test/clients-c/fixtures');

/** What the probe prints per call. */
export interface ProbeResult {
  rc: number;
  errno: string;
  allow: number;
  reason: string;
  decisionId: string;
  errorKind: string;
  message: string;
  strerror: string;
  elapsedMs: number;
  stage?: string;
}

export interface ProbeRun extends RunResult {
  results: ProbeResult[];
}

/** The sanitized library in `dir` and the probe linked statically against it; returns the probe. */
export function buildSanitizedProbe(dir: string): { build: CClientBuild; probe: string } {
  const build = buildCClient(dir, { cc: 'gcc', extraCflags: SANITIZE });
  const probe = path.join(dir, 'client-probe');
  compileCProgram({
    sources: [path.join(FIXTURES, 'client-probe.c')],
    out: probe,
    flags: [
      '-std=gnu11',
      '-g',
      '-O1',
      '-Wall',
      '-Wextra',
      '-Werror',
      ...SANITIZE.split(' '),
      `-I${build.includeDir}`,
      `-I${build.sourceDir}`,
    ],
    libs: [build.staticLibrary],
  });
  return { build, probe };
}

export const SANITIZER_ENV = {
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};

export async function runProbe(probe: string, args: string[], env: Record<string, string> = {}): Promise<ProbeRun> {
  const r = await runChild([probe, ...args], { PATH: process.env.PATH ?? '/usr/bin:/bin', ...SANITIZER_ENV, ...env });
  const results = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ProbeResult);
  return { ...r, results };
}

/** Fails with the sanitizer's report when the probe did not exit cleanly. */
export function assertClean(run: ProbeRun): void {
  if (run.status !== 0 || run.stderr !== '') {
    throw new Error(
      `the probe did not exit cleanly (status ${run.status}, signal ${run.signal}):\n${run.stderr}\n${run.stdout}`,
    );
  }
}

export function writeFile(dir: string, name: string, bytes: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.from(bytes, 'latin1'));
  return file;
}
