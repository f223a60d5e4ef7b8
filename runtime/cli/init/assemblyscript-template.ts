// The files `capgate init --lang assemblyscript` writes, besides the copied SDK.
// The starter policy and its scenario agree out of the box: `npm install && npm test` passes.
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { packagePath } from '../../bootstrap/package-root.ts';
import { PROJECT_SDK_DIR as SDK_DIR } from '../../packaging/project/layout.ts';
import { packageJson, projectLoop } from './package-json.ts';
import type { ProjectTemplate } from './project-template.ts';
import { SCENARIO_YAML } from './scenario-template.ts';

const ASC_PACKAGE_JSON = packagePath('node_modules', 'assemblyscript', 'package.json');

/** The AssemblyScript capgate is tested with; the project gets its own copy from npm. */
async function ascVersion(): Promise<string> {
  try {
    return (JSON.parse(await readFile(ASC_PACKAGE_JSON, 'utf8')) as { version: string }).version;
  } catch {
    return '0.28.0';
  }
}

const POLICY_TS = `// A capgate policy: a VM may raise the memlock limit of its own processes up to a cap its
// operator sets in the label "memlock-max" (a Kubernetes quantity such as 16Gi); without the
// label, up to 4Gi. Every request gets a fresh instance: keep no state between calls.
import {
  Decision, Operation, Request, CapabilityError, LogLevel,
  allow, deny, log, policy, queryVmIdentity, setMemlock, capabilityErrorName, parseQuantity, formatBytes,
} from "../${SDK_DIR}/index";
// The canonical-ABI exports (evaluate, cabi_realloc, ...) the host calls.
export * from "../${SDK_DIR}/abi";

const DEFAULT_CAP: u64 = 4 << 30; // 4Gi

function decide(req: Request): Decision {
  if (req.operation != Operation.SetMemlock) return deny("unsupported-operation");
  // Answers only for pids inside the requester's own VM.
  const vm = queryVmIdentity(req.targetPid);
  if (vm === null) return deny("target-not-in-requester-vm");
  let cap = DEFAULT_CAP;
  const label = vm.label("memlock-max");
  if (label !== null) {
    const quantity = parseQuantity(label);
    if (quantity === null) return deny("invalid-label: memlock-max");
    cap = quantity.bytes;
  }
  if (req.bytes > cap) {
    log(LogLevel.Warn, "request exceeds the cap of VM " + vm.name + ": " + formatBytes(cap));
    return deny("over-cap");
  }
  const err = setMemlock(req.targetPid, req.bytes);
  if (err != CapabilityError.None) return deny("set-memlock-failed: " + capabilityErrorName(err));
  log(LogLevel.Info, "memlock raised to " + formatBytes(req.bytes) + " for VM " + vm.name);
  return allow();
}

policy(decide);
`;

const GITIGNORE = 'build/\nnode_modules/\n';

function readme(name: string): string {
  return `# ${name}

A capgate policy in AssemblyScript (\`assembly/policy.ts\`), built against the contract
\`capgate:policy@1.0.0\`.

${projectLoop(name)}`;
}

export const assemblyScriptTemplate: ProjectTemplate = {
  lang: 'assemblyscript',
  sdkSource: pathToFileURL(`${packagePath('host-api', 'assemblyscript')}/`),
  async files({ name, capgate }) {
    return [
      [
        'package.json',
        packageJson({
          name,
          description: 'A capgate policy (capgate:policy@1.0.0) in AssemblyScript',
          lang: 'assemblyscript',
          capgate,
          devDependencies: { assemblyscript: `^${await ascVersion()}` },
        }),
      ],
      ['assembly/policy.ts', POLICY_TS],
      ['scenario.yaml', SCENARIO_YAML],
      ['.gitignore', GITIGNORE],
      ['README.md', readme(name)],
    ];
  },
};
