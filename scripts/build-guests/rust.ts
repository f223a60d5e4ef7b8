// Builds the Rust example policies (guest-examples/rust/<name>, SDK in host-api/rust) into
// components. Any toolchain with the wasm32-unknown-unknown std works; found in this order:
// rustup's `system` toolchain (Debian rustc linked with `rustup toolchain link system /usr`),
// the default rustc (rustup with the target added), Debian's /usr/bin/rustc used directly.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, type BuiltGuest, buildExamples } from './guest-build.ts';
import { ensureTrustedDirectory } from '../../runtime/daemon/path-trust.ts';
import { componentize } from '../../runtime/packaging/componentize.ts';
import { languageDir, SDK_EXAMPLES, SDK_REPO_ROOT } from './prebuilt.ts';
import { withBuildLock } from './build-lock.ts';
import { runTool, ToolchainMissingError } from '../../runtime/packaging/toolchains/run-tool.ts';
import { findRustToolchain, RUST_TARGET, type RustToolchain } from '../../runtime/packaging/toolchains/rust.ts';

export { findRustToolchain, RUST_TARGET, type RustToolchain };

function cargoEnv(toolchain: RustToolchain, sourceRoot: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...toolchain.env };
  // Flags from the caller's environment would change the bytes; ours are the only ones.
  for (const k of [
    'RUSTFLAGS',
    'CARGO_BUILD_RUSTFLAGS',
    'CARGO_TARGET_DIR',
    'CARGO_BUILD_TARGET_DIR',
    'RUSTC_WRAPPER',
    'CARGO_INCREMENTAL',
  ])
    delete env[k];
  // Reproducible: no absolute checkout path in the binary (panic locations name source files).
  env.CARGO_ENCODED_RUSTFLAGS = `--remap-path-prefix=${sourceRoot}=.`;
  return env;
}

export interface BuiltExample {
  core: Uint8Array;
  component: Uint8Array;
}

/** Where the sources live: the checkout by default; tests pass a copy elsewhere. */
export interface SourceRoot {
  root?: string;
}

/**
 * Cargo hashes the absolute path of a path dependency outside the package's workspace
 * (host-api/rust is one) into `-C metadata`, which changes symbol hashes and so the function
 * order in the output: the same sources built from two checkouts gave different bytes. So every
 * build runs from copies at this fixed path, whatever the checkout's location.
 */
export const RUST_STAGING_ROOT = '/tmp/capgate-rust-guest-build';

function stageSources(root: string, name: string): string {
  for (const part of [join('host-api', 'rust'), join('guest-examples', 'rust', name)]) {
    const staged = join(RUST_STAGING_ROOT, part);
    // Replace everything but the cargo target dir. Fresh timestamps on purpose: copies from two
    // checkouts could otherwise look "older" than the last build and be skipped by cargo.
    if (existsSync(staged))
      for (const entry of readdirSync(staged))
        if (entry !== 'target') rmSync(join(staged, entry), { recursive: true, force: true });
    mkdirSync(staged, { recursive: true });
    for (const entry of readdirSync(join(root, part))) {
      if (entry === 'target') continue;
      cpSync(join(root, part, entry), join(staged, entry), { recursive: true });
    }
  }
  return join(RUST_STAGING_ROOT, 'guest-examples', 'rust', name);
}

/** Compiles and componentizes one example; throws with cargo's output on failure. */
export async function buildRustExample(
  name: string,
  toolchain: RustToolchain = findRustToolchain(),
  { root = SDK_REPO_ROOT }: SourceRoot = {},
): Promise<BuiltExample> {
  if (!existsSync(join(root, 'guest-examples', 'rust', name, 'Cargo.toml'))) {
    throw new Error(
      `no Rust example "${name}": ${join(root, 'guest-examples', 'rust', name, 'Cargo.toml')} does not exist`,
    );
  }
  // A fixed path under /tmp: refused unless it is ours and writable by nobody else, or another
  // user could plant sources (and a build.rs) that cargo then runs as whoever builds.
  ensureTrustedDirectory(RUST_STAGING_ROOT, 'the Rust staging directory', 0o755);
  const core = await withBuildLock(join(RUST_STAGING_ROOT, '.lock'), async () => {
    const dir = stageSources(root, name);
    const run = runTool(
      toolchain.cargo,
      [...toolchain.cargoArgs, 'build', '--offline', '--release', '--quiet', '--target', RUST_TARGET],
      {
        cwd: dir,
        env: cargoEnv(toolchain, RUST_STAGING_ROOT),
      },
    );
    if (!run.ok)
      throw new Error(
        `cargo build failed for guest-examples/rust/${name} (${toolchain.version}):\n${run.stderr}${run.stdout}`,
      );
    return new Uint8Array(
      readFileSync(join(dir, 'target', RUST_TARGET, 'release', `${name.replaceAll('-', '_')}.wasm`)),
    );
  });
  return { core, component: await componentize(core) };
}

/** GuestBuilder for scripts/build-guests.ts: outputs in guest-examples/rust/build/. */
export async function buildRustGuests(options: BuildOptions = {}): Promise<BuiltGuest[]> {
  let toolchain: RustToolchain;
  try {
    toolchain = findRustToolchain();
  } catch (e) {
    if (!(e instanceof ToolchainMissingError)) throw e;
    console.warn(`rust guests not built (the committed guest-examples/rust/prebuilt/ stay in use): ${e.message}`);
    return [];
  }
  const sdkInputs = [
    join(SDK_REPO_ROOT, 'host-api', 'rust'),
    join(SDK_REPO_ROOT, 'host-api', 'wit'),
    fileURLToPath(import.meta.url),
  ];
  const exampleDir = (name: string) => join(languageDir('rust'), name);
  return buildExamples(
    {
      language: 'rust',
      names: SDK_EXAMPLES,
      outDir: join(languageDir('rust'), 'build'),
      inputsOf: (name) => [join(exampleDir(name), 'src'), join(exampleDir(name), 'Cargo.toml'), ...sdkInputs],
      build: (name) => buildRustExample(name, toolchain),
    },
    options,
  );
}
