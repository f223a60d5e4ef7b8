// The files `capgate init --lang rust` writes, besides the copied SDK (host-api/rust, the crate
// capgate-policy, no crates.io dependencies). Same rules as the AssemblyScript starter, so the
// shared scenario passes out of the box. `capgate build --lang rust` compiles it.
import { pathToFileURL } from 'node:url';
import { packagePath } from '../../bootstrap/package-root.ts';
import { PROJECT_SDK_DIR as SDK_DIR } from '../../packaging/project/layout.ts';
import { packageJson, projectLoop } from './package-json.ts';
import type { ProjectTemplate } from './project-template.ts';
import { SCENARIO_YAML } from './scenario-template.ts';

function cargoToml(name: string): string {
  return `[package]
name = "${name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
# The core module is target/wasm32-unknown-unknown/release/policy.wasm.
name = "policy"
crate-type = ["cdylib"]
path = "src/lib.rs"

[dependencies]
capgate-policy = { path = "${SDK_DIR}" }

# Small, deterministic modules: a policy is uploaded, hashed and instantiated per request.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"   # keep the function names: a trap then names its function

# A standalone package, not a member of any enclosing workspace.
[workspace]
`;
}

const LIB_RS = `//! A capgate policy: a VM may raise the memlock limit of its own processes up to a cap its
//! operator sets in the label "memlock-max" (a Kubernetes quantity such as 16Gi); without the
//! label, up to 4Gi. Every request gets a fresh instance: keep no state between calls.

use capgate_policy::{allow, deny, export_policy, format_bytes, log, parse_quantity, query_vm_identity, set_memlock, Decision, LogLevel, Operation, Request};

const DEFAULT_CAP: u64 = 4 << 30; // 4Gi

fn evaluate(req: &Request) -> Decision {
    if req.operation != Operation::SetMemlock {
        return deny("unsupported-operation");
    }
    // Answers only for pids inside the requester's own VM.
    let vm = match query_vm_identity(req.target_pid) {
        Some(vm) => vm,
        None => return deny("target-not-in-requester-vm"),
    };
    let cap = match vm.label("memlock-max") {
        None => DEFAULT_CAP,
        Some(text) => match parse_quantity(text) {
            Some(cap) => cap,
            None => return deny("invalid-label: memlock-max"),
        },
    };
    if req.bytes > cap {
        log(LogLevel::Warn, &format!("request exceeds the cap of VM {}: {}", vm.name, format_bytes(cap)));
        return deny("over-cap");
    }
    if let Err(e) = set_memlock(req.target_pid, req.bytes) {
        return Decision::Deny(format!("set-memlock-failed: {}", e.wit_name()));
    }
    log(LogLevel::Info, &format!("memlock raised to {} for VM {}", format_bytes(req.bytes), vm.name));
    allow()
}

export_policy!(evaluate);
`;

const GITIGNORE = 'build/\ntarget/\nnode_modules/\n';

function readme(name: string): string {
  return `# ${name}

A capgate policy in Rust (\`src/lib.rs\`, the SDK crate \`capgate-policy\` in \`${SDK_DIR}/\`, no
crates.io dependencies), built against the contract \`capgate:policy@1.0.0\`.

${projectLoop(name)}
Building needs a Rust toolchain with the \`wasm32-unknown-unknown\` standard library, e.g.
Debian/Ubuntu \`apt-get install rustc cargo libstd-rust-dev-wasm32\` (then, if rustup is on
PATH, \`rustup toolchain link system /usr\`), or \`rustup target add wasm32-unknown-unknown\`.
\`capgate build\` finds it, or says what to install.
`;
}

export const rustTemplate: ProjectTemplate = {
  lang: 'rust',
  sdkSource: pathToFileURL(`${packagePath('host-api', 'rust')}/`),
  async files({ name, capgate }) {
    return [
      [
        'package.json',
        packageJson({ name, description: 'A capgate policy (capgate:policy@1.0.0) in Rust', lang: 'rust', capgate }),
      ],
      ['Cargo.toml', cargoToml(name)],
      ['src/lib.rs', LIB_RS],
      ['scenario.yaml', SCENARIO_YAML],
      ['.gitignore', GITIGNORE],
      ['README.md', readme(name)],
    ];
  },
};
