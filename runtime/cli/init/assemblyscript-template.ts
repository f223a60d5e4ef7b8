// The files `capgate init --lang assemblyscript` writes, besides the copied SDK.
// The starter policy and its scenario agree out of the box: `npm test` passes on a fresh project.

export const SDK_DIR = 'capgate-sdk';

export function packageJson(name: string, ascVersion: string): string {
  const build =
    'asc assembly/policy.ts --runtime stub --use abort= -O3 --noAssert -o build/policy.core.wasm' +
    ' && capgate build build/policy.core.wasm -o build/policy.wasm';
  return `${JSON.stringify(
    {
      name,
      version: '0.1.0',
      private: true,
      description: 'A capgate policy (capgate:policy@1.0.0) in AssemblyScript',
      scripts: { build, test: 'npm run build && capgate test build/policy.wasm scenario.yaml' },
      devDependencies: { assemblyscript: `^${ascVersion}` },
    },
    null,
    2,
  )}\n`;
}

export const POLICY_TS = `// A capgate policy: a VM may raise the memlock limit of its own processes up to a cap its
// operator sets in the label "memlock-max" (decimal bytes); without the label, up to 4 GiB.
// Every request gets a fresh instance: keep no state between calls.
import {
  Decision, Operation, Request, CapabilityError, LogLevel,
  allow, deny, log, policy, queryVmIdentity, setMemlock, capabilityErrorName,
} from "../${SDK_DIR}/index";
// The canonical-ABI exports (evaluate, cabi_realloc, ...) the host calls.
export * from "../${SDK_DIR}/abi";

const DEFAULT_CAP: u64 = 4294967296; // 4 GiB

function capOf(label: string | null): u64 {
  if (label === null || label.length == 0 || label.length > 19) return DEFAULT_CAP;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c < 48 || c > 57) return DEFAULT_CAP;
  }
  return U64.parseInt(label, 10);
}

function decide(req: Request): Decision {
  if (req.operation != Operation.SetMemlock) return deny("unsupported-operation");
  // Answers only for pids inside the requester's own VM.
  const vm = queryVmIdentity(req.targetPid);
  if (vm === null) return deny("target-not-in-requester-vm");
  if (req.bytes > capOf(vm.label("memlock-max"))) {
    log(LogLevel.Warn, "request exceeds the cap of VM " + vm.name);
    return deny("over-cap");
  }
  const err = setMemlock(req.targetPid, req.bytes);
  if (err != CapabilityError.None) return deny("set-memlock-failed: " + capabilityErrorName(err));
  log(LogLevel.Info, "memlock raised for VM " + vm.name);
  return allow();
}

policy(decide);
`;

export const SCENARIO_YAML = `# Scenario for \`capgate test build/policy.wasm scenario.yaml\` (run by \`npm test\`).
# Each case runs in a fresh copy of this simulated host.
host:
  canRaiseHardLimit: true        # the daemon holds CAP_SYS_RESOURCE
vms:
  - uuid: 6f1c2a8e-0000-4000-8000-000000000001
    name: db-vm
    id: 1
    labels:
      memlock-max: "17179869184" # 16G
    pids: [1000, 1001]           # 1000: libvirt's helper, 1001: QEMU
  - uuid: 6f1c2a8e-0000-4000-8000-000000000002
    name: other-tenant
    id: 2
    pids: [2000]
processes:
  - pid: 1001
    memlock: { soft: 64K, hard: 64K }
cases:
  - name: raise QEMU within the cap
    request: { requesterPid: 1000, requesterUid: 107, targetPid: 1001, bytes: 8G }
    expect:
      decision: allow
      calls:
        - { op: query-vm-identity, pid: 1001, result: some }
        - { op: set-memlock, pid: 1001, bytes: 8G, result: ok }
      logs:
        - { level: info, message: memlock raised for VM db-vm }
      maxFuel: 200000

  - name: over the VM's cap
    request: { requesterPid: 1000, requesterUid: 107, targetPid: 1001, bytes: 32G }
    expect:
      decision: deny
      reason: over-cap
      calls:
        - { op: query-vm-identity, pid: 1001, result: some }

  - name: another tenant's process
    request: { requesterPid: 1000, targetPid: 2000, bytes: 1G }
    expect:
      decision: deny
      reason: target-not-in-requester-vm

  - name: kernel refuses without CAP_SYS_RESOURCE
    host: { canRaiseHardLimit: false }
    request: { requesterPid: 1000, targetPid: 1001, bytes: 1G }
    expect:
      decision: deny
      reason: "/^set-memlock-failed: not-permitted$/"   # quote values containing ": "
`;

export const GITIGNORE = 'build/\nnode_modules/\n';

export function readme(name: string): string {
  return `# ${name}

A [capgate](https://github.com/) policy in AssemblyScript, built against the contract
\`capgate:policy@1.0.0\` (WIT in \`${SDK_DIR}/\`'s documentation).

    npm install        # AssemblyScript compiler
    npm run build      # build/policy.wasm
    npm test           # build, then run scenario.yaml in the capgate simulator

Push it to a daemon: \`capgate policy push build/policy.wasm --name ${name} --activate set-memlock\`.
`;
}
