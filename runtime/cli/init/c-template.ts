// The files `capgate init --lang c` writes, besides the copied SDK (host-api/c: header and
// freestanding runtime). Same rules as the AssemblyScript starter, so the shared scenario passes
// out of the box. `capgate build --lang c` compiles src/*.c with the SDK runtime.
import { pathToFileURL } from 'node:url';
import { packagePath } from '../../bootstrap/package-root.ts';
import { C_SOURCE_DIR, PROJECT_SDK_DIR as SDK_DIR } from '../../packaging/project/layout.ts';
import type { ProjectTemplate } from './project-template.ts';
import { packageJson, SCENARIO_YAML } from './scenario-template.ts';

const POLICY_C = `/* A capgate policy: a VM may raise the memlock limit of its own processes up to a cap its
 * operator sets in the label "memlock-max" (decimal bytes); without the label, up to 4 GiB.
 * Every request gets a fresh instance: keep no state between calls. Freestanding C: no libc;
 * the SDK runtime provides memcpy/memset and a heap that is reset after every evaluation. */
#include "capgate_policy.h"

#define DEFAULT_CAP 4294967296ull /* 4 GiB */

static uint64_t cap_of(const capgate_vm_identity *vm) {
  capgate_string label;
  if (!capgate_vm_identity_label(vm, "memlock-max", &label) || label.len == 0 || label.len > 19) return DEFAULT_CAP;
  uint64_t value = 0;
  for (uint32_t i = 0; i < label.len; i++) {
    char c = label.ptr[i];
    if (c < '0' || c > '9') return DEFAULT_CAP;
    value = value * 10 + (uint64_t)(c - '0');
  }
  return value;
}

/* Logs prefix followed by the VM's name. Strings are slices: join them on the SDK's heap. */
static void log_for_vm(capgate_log_level level, const char *prefix, capgate_string vm_name) {
  uint32_t prefix_len = capgate_strlen(prefix);
  char *line = capgate_alloc(prefix_len + vm_name.len, 1);
  if (line == NULL) {
    capgate_log(level, prefix);
    return;
  }
  __builtin_memcpy(line, prefix, prefix_len);
  __builtin_memcpy(line + prefix_len, vm_name.ptr, vm_name.len);
  capgate_log_string(level, (capgate_string){line, prefix_len + vm_name.len});
}

capgate_decision capgate_evaluate(const capgate_request *req) {
  if (req->operation != CAPGATE_OPERATION_SET_MEMLOCK) return capgate_deny("unsupported-operation");

  /* Answers only for pids inside the requester's own VM. */
  capgate_vm_identity vm;
  if (!capgate_query_vm_identity(req->target_pid, &vm)) return capgate_deny("target-not-in-requester-vm");

  if (req->bytes > cap_of(&vm)) {
    log_for_vm(CAPGATE_LOG_WARN, "request exceeds the cap of VM ", vm.name);
    return capgate_deny("over-cap");
  }

  capgate_capability_error error;
  if (!capgate_set_memlock(req->target_pid, req->bytes, &error)) {
    return capgate_deny_concat("set-memlock-failed: ", capgate_capability_error_name(error));
  }
  log_for_vm(CAPGATE_LOG_INFO, "memlock raised for VM ", vm.name);
  return capgate_allow();
}
`;

const GITIGNORE = 'build/\nnode_modules/\n';

function readme(name: string): string {
  return `# ${name}

A capgate policy in freestanding C, built against the contract \`capgate:policy@1.0.0\`. The SDK
(\`capgate_policy.h\` and the runtime \`capgate_runtime.c\`) is in \`${SDK_DIR}/\`; its README lists
the API. Every \`${C_SOURCE_DIR}/*.c\` is compiled into the policy.

    npm run build      # = capgate build --lang c . -o build/policy.wasm
    npm test           # build, then run scenario.yaml in the capgate simulator

Building needs clang >= 14 with the wasm32 target and wasm-ld, e.g. Debian/Ubuntu
\`apt-get install clang-14 lld-14\`. \`capgate build\` finds it, or says what to install.

Push it to a daemon: \`capgate policy push build/policy.wasm --name ${name} --activate set-memlock\`.
`;
}

export const cTemplate: ProjectTemplate = {
  lang: 'c',
  sdkSource: pathToFileURL(`${packagePath('host-api', 'c')}/`),
  async files(name) {
    return [
      ['package.json', packageJson(name, 'A capgate policy (capgate:policy@1.0.0) in C', 'capgate build --lang c . -o build/policy.wasm')],
      [`${C_SOURCE_DIR}/policy.c`, POLICY_C],
      ['scenario.yaml', SCENARIO_YAML],
      ['.gitignore', GITIGNORE],
      ['README.md', readme(name)],
    ];
  },
  nextSteps: ['npm test'],
};
