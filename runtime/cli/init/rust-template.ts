// The files `capgate init --lang rust` writes, besides the copied SDK (host-api/rust, the crate
// capgate-policy, no crates.io dependencies). Same rules as the AssemblyScript starter, so the
// shared scenario passes out of the box. `capgate build --lang rust` compiles it.
import { pathToFileURL } from 'node:url';
import { packagePath } from '../../bootstrap/package-root.ts';
import { PROJECT_SDK_DIR as SDK_DIR } from '../../packaging/project/layout.ts';
import type { ProjectTemplate } from './project-template.ts';
import { packageJson, SCENARIO_YAML } from './scenario-template.ts';

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
strip = true

# A standalone package, not a member of any enclosing workspace.
[workspace]
`;
}

const LIB_RS = `//! A capgate policy: a VM may raise the memlock limit of its own processes up to a cap its
//! operator sets in the label "memlock-max" (decimal bytes); without the label, up to 4 GiB.
//! Every request gets a fresh instance: keep no state between calls.

use capgate_policy::{allow, deny, export_policy, log, query_vm_identity, set_memlock, Decision, LogLevel, Operation, Request};

const DEFAULT_CAP: u64 = 4_294_967_296; // 4 GiB

fn cap_of(label: Option<&str>) -> u64 {
    match label {
        Some(text) if !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().unwrap_or(DEFAULT_CAP),
        _ => DEFAULT_CAP,
    }
}

fn evaluate(req: &Request) -> Decision {
    if req.operation != Operation::SetMemlock {
        return deny("unsupported-operation");
    }
    // Answers only for pids inside the requester's own VM.
    let vm = match query_vm_identity(req.target_pid) {
        Some(vm) => vm,
        None => return deny("target-not-in-requester-vm"),
    };
    if req.bytes > cap_of(vm.label("memlock-max")) {
        log(LogLevel::Warn, &format!("request exceeds the cap of VM {}", vm.name));
        return deny("over-cap");
    }
    if let Err(e) = set_memlock(req.target_pid, req.bytes) {
        return Decision::Deny(format!("set-memlock-failed: {}", e.wit_name()));
    }
    log(LogLevel::Info, &format!("memlock raised for VM {}", vm.name));
    allow()
}

export_policy!(evaluate);
`;

const GITIGNORE = 'build/\ntarget/\nnode_modules/\n';

function readme(name: string): string {
  return `# ${name}

A capgate policy in Rust, built against the contract \`capgate:policy@1.0.0\`. The SDK (crate
\`capgate-policy\`, no crates.io dependencies) is in \`${SDK_DIR}/\`; its README lists the API.

    npm run build      # = capgate build --lang rust . -o build/policy.wasm
    npm test           # build, then run scenario.yaml in the capgate simulator

Building needs a Rust toolchain with the \`wasm32-unknown-unknown\` standard library, e.g.
Debian/Ubuntu \`apt-get install rustc cargo libstd-rust-dev-wasm32\` (then, if rustup is on
PATH, \`rustup toolchain link system /usr\`), or \`rustup target add wasm32-unknown-unknown\`.
\`capgate build\` finds it, or says what to install.

Push it to a daemon: \`capgate policy push build/policy.wasm --name ${name} --activate set-memlock\`.
`;
}

export const rustTemplate: ProjectTemplate = {
  lang: 'rust',
  sdkSource: pathToFileURL(`${packagePath('host-api', 'rust')}/`),
  async files(name) {
    return [
      ['package.json', packageJson(name, 'A capgate policy (capgate:policy@1.0.0) in Rust', 'capgate build --lang rust . -o build/policy.wasm')],
      ['Cargo.toml', cargoToml(name)],
      ['src/lib.rs', LIB_RS],
      ['scenario.yaml', SCENARIO_YAML],
      ['.gitignore', GITIGNORE],
      ['README.md', readme(name)],
    ];
  },
  nextSteps: ['npm test'],
};
