// The capgate command tree. One file per noun under commands/.
import { Command } from 'commander';
import { registerAudit } from './commands/audit.ts';
import { registerBuild } from './commands/build.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerEval } from './commands/eval.ts';
import { registerHealth } from './commands/health.ts';
import { registerInit } from './commands/init.ts';
import { registerPolicy } from './commands/policy.ts';
import { registerRequest } from './commands/request.ts';
import { registerServe } from './commands/serve.ts';
import { registerTest } from './commands/test.ts';
import { registerVm } from './commands/vm.ts';
import { CAPGATE_VERSION, CONTRACT_VERSION } from '../bootstrap/version.ts';
import { EXIT_CODES_HELP } from './exit-codes.ts';

// Command modules import only what defines their options; what runs an action (engine,
// simulator, toolchains, daemon) is imported inside it, so `capgate request` starts quickly.

/** `capgate --version`: the package, and the policy contract (WIT) it runs. */
export const VERSION_TEXT = `capgate ${CAPGATE_VERSION}\ncontract ${CONTRACT_VERSION} (host-api/wit/policy.wit)`;

export function createProgram(): Command {
  const program = new Command('capgate')
    .description('capgate: privileged operations for unprivileged clients, decided by sandboxed WebAssembly policies')
    .version(VERSION_TEXT, '-V, --version', "print capgate's version and the policy contract version")
    .exitOverride()
    .showSuggestionAfterError()
    .configureHelp({ sortSubcommands: false });
  program.addHelpText(
    'after',
    `
Examples:
  $ capgate serve --config /etc/capgate/config.yaml
  $ capgate policy push memlock-cap.wasm --name memlock-cap --activate set-memlock
  $ capgate vm register --uuid 6f1c... --name db-vm --id 7 --label vfio=true --pid 4242
  $ capgate audit tail --follow
  $ capgate health                            # exit 0 when the daemon is serving
  $ capgate init my-policy --lang rust        # or assemblyscript, c; then: cd my-policy && npm test
  $ capgate build --lang rust my-policy -o my-policy/build/policy.wasm
  $ capgate test policy.wasm scenario.yaml
  $ capgate eval policy.wasm --bytes 16Gi --label vfio=true
${EXIT_CODES_HELP}
`,
  );
  // Settings above (exitOverride) are inherited by every command created below.
  registerServe(program);
  registerPolicy(program);
  registerVm(program);
  registerRequest(program);
  registerAudit(program);
  registerBuild(program);
  registerInit(program);
  registerTest(program);
  registerEval(program);
  registerHealth(program);
  registerCompletion(program);
  return program;
}
