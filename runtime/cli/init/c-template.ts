// The files `capgate init --lang c` writes, besides the copied SDK (host-api/c: header and
// freestanding runtime). Same rules as the AssemblyScript starter, so the shared scenario passes
// out of the box. `capgate build --lang c` compiles src/*.c with the SDK runtime.
import { pathToFileURL } from 'node:url';
import { packagePath } from '../../bootstrap/package-root.ts';
import { C_SOURCE_DIR, PROJECT_SDK_DIR as SDK_DIR } from '../../packaging/project/layout.ts';
import { packageJson, projectLoop } from './package-json.ts';
import type { ProjectTemplate } from './project-template.ts';
import { SCENARIO_YAML } from './scenario-template.ts';

const POLICY_C = `/* A capgate policy: a VM may raise the memlock limit of its own processes up to a cap its
 * operator sets in the label "memlock-max" (a Kubernetes quantity such as 16Gi); without the
 * label, up to 4Gi. Every request gets a fresh instance: keep no state between calls.
 * Freestanding C: no libc; the SDK provides formatting into bounded buffers and a heap that is
 * reset after every evaluation. */
#include "capgate_policy.h"

#define DEFAULT_CAP (4ull << 30) /* 4Gi */

capgate_decision capgate_evaluate(const capgate_request *req) {
  if (req->operation != CAPGATE_OPERATION_SET_MEMLOCK) return capgate_deny("unsupported-operation");

  /* Answers only for pids inside the requester's own VM. */
  capgate_vm_identity vm;
  if (!capgate_query_vm_identity(req->target_pid, &vm)) return capgate_deny("target-not-in-requester-vm");

  uint64_t cap = DEFAULT_CAP;
  capgate_string label;
  if (capgate_vm_identity_label(&vm, "memlock-max", &label) && !capgate_parse_quantity(label, &cap)) {
    return capgate_deny("invalid-label: memlock-max");
  }

  char text[160];
  capgate_buf line = CAPGATE_BUF(text);
  if (req->bytes > cap) {
    capgate_buf_str(&line, "request exceeds the cap of VM ");
    capgate_buf_string(&line, vm.name);
    capgate_buf_str(&line, ": ");
    capgate_buf_bytes(&line, cap);
    capgate_log_buf(CAPGATE_LOG_WARN, &line);
    return capgate_deny("over-cap");
  }

  capgate_capability_error error;
  if (!capgate_set_memlock(req->target_pid, req->bytes, &error)) {
    return capgate_deny_concat("set-memlock-failed: ", capgate_capability_error_name(error));
  }
  capgate_buf_str(&line, "memlock raised to ");
  capgate_buf_bytes(&line, req->bytes);
  capgate_buf_str(&line, " for VM ");
  capgate_buf_string(&line, vm.name);
  capgate_log_buf(CAPGATE_LOG_INFO, &line);
  return capgate_allow();
}
`;

const GITIGNORE = 'build/\nnode_modules/\n';

function readme(name: string): string {
  return `# ${name}

A capgate policy in freestanding C (every \`${C_SOURCE_DIR}/*.c\` is compiled with the SDK in
\`${SDK_DIR}/\`), built against the contract \`capgate:policy@1.0.0\`.

${projectLoop(name)}
Building needs clang >= 14 with the wasm32 target and wasm-ld, e.g. Debian/Ubuntu
\`apt-get install clang-14 lld-14\`. \`capgate build\` finds it, or says what to install.
`;
}

export const cTemplate: ProjectTemplate = {
  lang: 'c',
  sdkSource: pathToFileURL(`${packagePath('host-api', 'c')}/`),
  async files({ name, capgate }) {
    return [
      [
        'package.json',
        packageJson({ name, description: 'A capgate policy (capgate:policy@1.0.0) in C', lang: 'c', capgate }),
      ],
      [`${C_SOURCE_DIR}/policy.c`, POLICY_C],
      ['scenario.yaml', SCENARIO_YAML],
      ['.gitignore', GITIGNORE],
      ['README.md', readme(name)],
    ];
  },
};
