// Runs a toolchain command synchronously and captures its output; never throws for a missing
// binary (the caller turns that into "install X").
import { spawnSync } from 'node:child_process';

export interface ToolRun {
  ok: boolean;
  /** Exit status; null when the binary could not be started (missing, not executable). */
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runTool(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ToolRun {
  const r = spawnSync(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  return {
    ok: r.error === undefined && r.status === 0,
    status: r.error === undefined ? r.status : null,
    stdout: r.stdout ?? '',
    stderr: r.error !== undefined ? String(r.error.message) : (r.stderr ?? ''),
  };
}

/** Thrown when no usable toolchain is installed; `message` says exactly what to install. */
export class ToolchainMissingError extends Error {
  override readonly name = 'ToolchainMissingError';
  constructor(
    readonly language: 'rust' | 'c',
    message: string,
  ) {
    super(message);
  }
}
