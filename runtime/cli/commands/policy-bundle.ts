// `capgate policy bundle`: writes a policy directory (policies.directory) from the revisions a
// daemon has bound, or from local .wasm files with their .minisig beside them, and optionally
// a ConfigMap manifest that ships the same files to every node (docs/fleet.md). Here only the
// command's options: the work is in policy-bundle-write.ts, loaded when the command runs.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { OPERATIONS, type Operation } from '../../contract/types.ts';
import { examples, withAdminSocket, withJson } from '../options.ts';
import type { BundleOptions } from './policy-bundle-write.ts';

function bindArg(value: string, previous: Array<[Operation, string]> = []): Array<[Operation, string]> {
  const [op, policy, ...rest] = value.split('=');
  if (rest.length > 0 || !op || !policy)
    throw new InvalidArgumentError(`--bind "${value}" must be <operation>=<policy>, e.g. set-memlock=memlock-cap`);
  if (!(OPERATIONS as readonly string[]).includes(op))
    throw new InvalidArgumentError(`--bind: unknown operation "${op}" (operations: ${OPERATIONS.join(', ')})`);
  return [...previous, [op as Operation, policy]];
}

export function registerPolicyBundle(policy: Command): void {
  const bundle = withJson(
    withAdminSocket(
      policy
        .command('bundle')
        .description(
          'write a policy directory (policies.directory), and a ConfigMap of it, from what a daemon has bound or from local .wasm files',
        ),
    ),
  )
    .argument(
      '[files...]',
      'local policies: <file.wasm> (named after the file) or <name>=<file.wasm>; <file.wasm>.minisig beside one is bundled with it. None: the revisions the daemon (--socket) has bound',
    )
    .requiredOption('-o, --out <dir>', 'the directory to write (created; must be empty)')
    .option(
      '--bind <operation=policy>',
      'with local files: bind an operation to one of them (repeatable); pinned by sha256',
      bindArg,
      [],
    )
    .option(
      '--configmap <name>',
      'also write <name>.yaml beside --out: a ConfigMap with the same files, for the DaemonSet to mount',
    )
    .option('--namespace <ns>', "the ConfigMap's namespace", 'capgate-system')
    .option('--force', 'write into a directory that is not empty', false);
  examples(bundle, [
    'capgate policy bundle --out policies --configmap capgate-policies                       # what this node runs',
    'capgate policy bundle --out policies build/memlock-cap.wasm --bind set-memlock=memlock-cap   # local, with build/memlock-cap.wasm.minisig',
  ]);
  bundle.action(async (files: string[], o: BundleOptions) => {
    const { writeBundle } = await import('./policy-bundle-write.ts');
    await writeBundle(files, o);
  });
}
