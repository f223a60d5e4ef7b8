// Compiles a Rust policy crate (a cdylib using the capgate-policy SDK) to a core module, with the
// toolchain discovery of ../toolchains/rust.ts, shared with the example builds: whatever builds the examples builds this.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findRustToolchain, RUST_TARGET, type RustToolchain } from '../toolchains/rust.ts';
import { runTool } from '../toolchains/run-tool.ts';
import type { CompiledProject } from './built-project.ts';
import type { BuildOptions } from './layout.ts';
import { ProjectBuildError } from './project-build-error.ts';
import { findToolchainOrExplain } from './toolchain-missing.ts';

/** The subset of cargo's `--message-format=json` lines we read. */
interface CargoArtifactMessage {
  reason: 'compiler-artifact';
  target: { name: string; kind: string[] };
  filenames: string[];
}

function isCdylibArtifact(line: string): CargoArtifactMessage | null {
  if (!line.startsWith('{')) return null;
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    return null;
  }
  const m = message as Partial<CargoArtifactMessage>;
  if (m.reason !== 'compiler-artifact' || !Array.isArray(m.target?.kind) || !Array.isArray(m.filenames)) return null;
  return m.target.kind.includes('cdylib') ? (m as CargoArtifactMessage) : null;
}

function cargoEnv(toolchain: RustToolchain, dir: string, options: BuildOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...toolchain.env };
  // Function names stay in the module (traps name them), DWARF goes, whatever the profile says;
  // --strip removes the names afterwards. A debug build is cargo's dev profile, aborting on panic.
  const profile = options.debug ? 'DEV' : 'RELEASE';
  env[`CARGO_PROFILE_${profile}_STRIP`] = 'debuginfo';
  if (options.debug) env.CARGO_PROFILE_DEV_PANIC = 'abort';
  // Keep the author's home path out of the uploaded policy (panic locations name source files),
  // unless the author chose their own flags.
  if (
    env.RUSTFLAGS === undefined &&
    env.CARGO_ENCODED_RUSTFLAGS === undefined &&
    env.CARGO_BUILD_RUSTFLAGS === undefined
  ) {
    env.CARGO_ENCODED_RUSTFLAGS = `--remap-path-prefix=${dir}=.`;
  }
  return env;
}

/** `cargo build --release --target wasm32-unknown-unknown` in `dir`; returns the cdylib's bytes. */
export function compileRustProject(dir: string, options: BuildOptions = {}): CompiledProject {
  if (!existsSync(join(dir, 'Cargo.toml'))) {
    throw new ProjectBuildError(
      'not-a-project',
      `${dir} has no Cargo.toml`,
      'pass the directory of a Rust policy crate, or create one with `capgate init <dir> --lang rust`',
    );
  }
  const toolchain = findToolchainOrExplain(findRustToolchain);
  const run = runTool(
    toolchain.cargo,
    [
      ...toolchain.cargoArgs,
      'build',
      ...(options.debug ? [] : ['--release']),
      '--target',
      RUST_TARGET,
      '--message-format=json-render-diagnostics',
    ],
    { cwd: dir, env: cargoEnv(toolchain, dir, options) },
  );
  if (!run.ok) {
    throw new ProjectBuildError(
      'compile-failed',
      `cargo build failed in ${dir} (${toolchain.version}):\n${run.stderr.trimEnd()}`,
      'fix the errors above, then build again',
    );
  }
  const wasm = run.stdout
    .split('\n')
    .map(isCdylibArtifact)
    .flatMap((a) => a?.filenames.filter((f) => f.endsWith('.wasm')) ?? []);
  const file = wasm.at(-1);
  if (file === undefined) {
    throw new ProjectBuildError(
      'not-a-project',
      `cargo built no WebAssembly cdylib in ${dir}`,
      'a policy crate needs `[lib] crate-type = ["cdylib"]` in its Cargo.toml (see capgate-sdk/README.md)',
    );
  }
  return { core: new Uint8Array(readFileSync(file)), toolchain: toolchain.version };
}
