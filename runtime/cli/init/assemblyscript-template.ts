// The files `capgate init --lang assemblyscript` writes, besides the copied SDK.
// The starter policy and its scenario agree out of the box: `npm test` passes on a fresh project.
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { packagePath } from '../../bootstrap/package-root.ts';
import { PROJECT_SDK_DIR as SDK_DIR } from '../../packaging/project/layout.ts';
import type { ProjectTemplate } from './project-template.ts';
import { packageJson, SCENARIO_YAML } from './scenario-template.ts';

const ASC_PACKAGE_JSON = packagePath('node_modules', 'assemblyscript', 'package.json');

async function ascVersion(): Promise<string> {
  try {
    return (JSON.parse(await readFile(ASC_PACKAGE_JSON, 'utf8')) as { version: string }).version;
  } catch {
    return '0.28.0';
  }
}

function asPackageJson(name: string, ascRange: string): string {
  const build =
    'asc assembly/policy.ts --runtime stub --use abort= -O3 --noAssert -o build/policy.core.wasm' +
    ' && capgate build build/policy.core.wasm -o build/policy.wasm';
  return packageJson(name, 'A capgate policy (capgate:policy@1.0.0) in AssemblyScript', build, { assemblyscript: `^${ascRange}` });
}

const POLICY_TS = `// A capgate policy: a VM may raise the memlock limit of its own processes up to a cap its
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

const GITIGNORE = 'build/\nnode_modules/\n';

function readme(name: string): string {
  return `# ${name}

A [capgate](https://github.com/) policy in AssemblyScript, built against the contract
\`capgate:policy@1.0.0\` (WIT in \`${SDK_DIR}/\`'s documentation).

    npm install        # AssemblyScript compiler
    npm run build      # build/policy.wasm
    npm test           # build, then run scenario.yaml in the capgate simulator

Push it to a daemon: \`capgate policy push build/policy.wasm --name ${name} --activate set-memlock\`.
`;
}

export const assemblyScriptTemplate: ProjectTemplate = {
  lang: 'assemblyscript',
  sdkSource: pathToFileURL(`${packagePath('host-api', 'assemblyscript')}/`),
  async files(name) {
    return [
      ['package.json', asPackageJson(name, await ascVersion())],
      ['assembly/policy.ts', POLICY_TS],
      ['scenario.yaml', SCENARIO_YAML],
      ['.gitignore', GITIGNORE],
      ['README.md', readme(name)],
    ];
  },
  nextSteps: ['npm install', 'npm test'],
};
