// Finds a Rust toolchain that can build wasm32-unknown-unknown policies, or says what to install.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runTool, ToolchainMissingError } from './run-tool.ts';

export const RUST_TARGET = 'wasm32-unknown-unknown';

export interface RustToolchain {
  /** cargo binary and the arguments that select the toolchain (e.g. ["+system"]). */
  cargo: string;
  cargoArgs: string[];
  /** Extra environment (RUSTC for a non-rustup cargo). */
  env: Record<string, string>;
  /** `rustc -V` of the selected toolchain: recorded with the committed artifacts. */
  version: string;
}

const INSTALL_HINT =
  'no Rust toolchain with the wasm32-unknown-unknown target found. Install one of:\n' +
  '  - Debian/Ubuntu: apt-get install rustc cargo libstd-rust-dev-wasm32 (then, if rustup is on PATH: rustup toolchain link system /usr)\n' +
  '  - rustup: rustup target add wasm32-unknown-unknown';

function hasWasmStd(rustc: string, selector: string[]): string | null {
  const sysroot = runTool(rustc, [...selector, '--print', 'sysroot']);
  if (!sysroot.ok) return null;
  if (!existsSync(join(sysroot.stdout.trim(), 'lib', 'rustlib', RUST_TARGET, 'lib'))) return null;
  const version = runTool(rustc, [...selector, '-V']);
  return version.ok ? version.stdout.trim() : null;
}

/** The first usable toolchain; throws ToolchainMissingError saying what to install. */
export function findRustToolchain(): RustToolchain {
  const viaRustupSystem = hasWasmStd('rustc', ['+system']);
  if (viaRustupSystem !== null && runTool('cargo', ['+system', '-V']).ok) {
    return { cargo: 'cargo', cargoArgs: ['+system'], env: {}, version: viaRustupSystem };
  }
  const viaDefault = hasWasmStd('rustc', []);
  if (viaDefault !== null && runTool('cargo', ['-V']).ok)
    return { cargo: 'cargo', cargoArgs: [], env: {}, version: viaDefault };
  const viaDebian = hasWasmStd('/usr/bin/rustc', []);
  if (viaDebian !== null && runTool('/usr/bin/cargo', ['-V']).ok) {
    return { cargo: '/usr/bin/cargo', cargoArgs: [], env: { RUSTC: '/usr/bin/rustc' }, version: viaDebian };
  }
  throw new ToolchainMissingError('rust', INSTALL_HINT);
}
