// `capgate policy push|ls|inspect|activate|unbind|rollback|history|rm|bundle`: policy revisions and their bindings.
import type { Command } from 'commander';
import { Option } from 'commander';
import { OPERATIONS, type Operation } from '../../contract/types.ts';
import type { BindingHistoryEntry, BindingResponse, RevisionInfo } from '../../wire/index.ts';
import { formatByteSize } from '../../simulator/byte-size.ts';
import { withAdmin } from '../daemon-client.ts';
import { registerPolicyBundle } from './policy-bundle.ts';
import { nameFromManifest } from '../manifest-name.ts';
import { examples, positiveIntArg, withAdminSocket, withJson } from '../options.ts';
import { createOutput } from '../output/output.ts';
import { formatTable } from '../output/table.ts';

interface Common {
  socket?: string;
  json: boolean;
}

const operationOption = (flags: string, description: string): Option =>
  new Option(flags, description).choices([...OPERATIONS]).default('set-memlock');

function leaf(parent: Command, name: string, description: string): Command {
  return withJson(withAdminSocket(parent.command(name).description(description)));
}

function describeBinding(r: BindingResponse): string {
  const now = r.binding
    ? `${r.binding.policy} rev ${r.binding.revision} (${r.binding.sha256.slice(0, 12)})`
    : 'nothing (requests are denied: no-policy)';
  const before =
    r.previous === undefined
      ? ''
      : ` (was ${r.previous ? `${r.previous.policy} rev ${r.previous.revision}` : 'nothing'})`;
  return `${r.operation} -> ${now}${before}`;
}

function describeRevision(r: RevisionInfo): string {
  const rows: string[][] = [
    ['policy', `${r.policy} rev ${r.revision}`],
    ['sha256', r.sha256],
    ['size', `${r.size} bytes`],
    ['created', r.createdAt],
    ['bound to', r.boundTo.length > 0 ? r.boundTo.join(', ') : '-'],
    [
      'signed by',
      r.signature
        ? `${r.signature.signer} (key ${r.signature.keyId})${r.trustedNow ? '' : ' — NOT TRUSTED NOW: the key is not among the trust roots, or the signature no longer verifies'}`
        : 'unsigned',
    ],
    ...(r.signature ? [['trusted comment', r.signature.trustedComment || '-']] : []),
    ['description', r.description || '-'],
    ['imports', r.imports.join(', ') || '-'],
    ['exports', r.exports.join(', ') || '-'],
    ['host functions', r.hostFunctions.join(', ') || '-'],
    [
      'limits',
      `fuel ${r.limits.fuel}, memory ${formatByteSize(BigInt(r.limits.memoryPages) * 65536n)} (${r.limits.memoryPages} pages), deadline ${r.limits.deadlineMs} ms`,
    ],
  ];
  const w = Math.max(...rows.map(([k]) => k!.length));
  return [...rows.map(([k, v]) => `${k!.padEnd(w)}  ${v}`), '', r.wit.trimEnd()].join('\n');
}

function historyRow(out: ReturnType<typeof createOutput>, e: BindingHistoryEntry): string[] {
  const what = e.binding ? `${e.binding.policy} rev ${e.binding.revision}` : '-';
  return [
    e.at,
    e.action === 'bind' ? out.colours.pass('bind') : out.colours.warn('unbind'),
    what,
    e.binding ? e.binding.sha256.slice(0, 12) : '-',
    e.rolledBackAt ?? '-',
  ];
}

export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .description('upload, inspect, activate and roll back policies on a running daemon');

  const push = leaf(policy, 'push', 'upload a policy component as a new revision')
    .argument('<file.wasm>', 'policy component (see `capgate build`)')
    .option(
      '-n, --name <name>',
      'policy name (lowercase letters, digits, ".", "_", "-"); default: the "name" of the nearest package.json, as `capgate init` writes it',
    )
    .option('-d, --description <text>', 'what changed in this revision')
    .option(
      '--signature <file.minisig>',
      'minisign signature of the file (`minisign -Sm <file.wasm>` writes <file.wasm>.minisig); required when the daemon has policies.requireSignatures',
    )
    .addOption(
      new Option('--activate <operation>', 'bind the new revision to this operation right away').choices([
        ...OPERATIONS,
      ]),
    );
  examples(push, [
    'capgate policy push build/policy.wasm --activate set-memlock   # in a project made by `capgate init`: its name',
    'capgate policy push build/policy.wasm --name memlock-cap',
    'capgate policy push build/policy.wasm --name memlock-cap --activate set-memlock',
    'minisign -Sm build/policy.wasm && capgate policy push build/policy.wasm --signature build/policy.wasm.minisig',
  ]);
  push.action(
    async (
      file: string,
      opts: Common & { name?: string; description?: string; signature?: string; activate?: Operation },
    ) => {
      const out = createOutput(opts.json);
      const { readPolicyFile } = await import('../local-simulator.ts');
      const bytes = await readPolicyFile(file);
      const { readSignatureFile } = await import('../signature-file.ts');
      const signature = opts.signature === undefined ? undefined : await readSignatureFile(opts.signature);
      const named = opts.name === undefined ? await nameFromManifest(file) : undefined;
      if (named) out.note(`policy name ${named.name} (from ${named.manifest})`);
      const o = { ...opts, name: opts.name ?? named!.name };
      await withAdmin(
        o.socket,
        async (c) => {
          out.progress(`uploading ${file} (${bytes.length} bytes)`);
          const pushed = await c.pushPolicy(o.name, bytes, {
            ...(o.description === undefined ? {} : { description: o.description }),
            ...(signature === undefined ? {} : { signature }),
          });
          const bound = o.activate
            ? await c.bind(o.activate, { policy: o.name, revision: pushed.revision.revision })
            : undefined;
          out.result({ ...pushed, ...(bound ? { binding: bound } : {}) }, () =>
            [
              `${pushed.created ? 'pushed' : 'unchanged (identical to the latest revision)'}: ${pushed.revision.policy} rev ${pushed.revision.revision} sha256 ${pushed.revision.sha256.slice(0, 16)}…`,
              ...(pushed.revision.signature
                ? [`signed by ${pushed.revision.signature.signer} (key ${pushed.revision.signature.keyId})`]
                : []),
              ...(bound ? [`activated: ${describeBinding(bound)}`] : []),
            ].join('\n'),
          );
          // Uploads are validated, instrumented and compiled before the daemon answers.
        },
        120_000,
      );
    },
  );

  const ls = leaf(policy, 'ls', 'list policies, their revisions and what is bound');
  examples(ls, ['capgate policy ls', 'capgate policy ls --json']);
  ls.action(async (o: Common) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const { policies } = await c.listPolicies();
      out.result({ policies }, () => {
        const rows = policies.flatMap((p) =>
          p.revisions.map((r) => [
            p.name,
            String(r.revision),
            r.sha256.slice(0, 12),
            String(r.size),
            r.boundTo.length ? out.colours.pass(r.boundTo.join(',')) : '-',
            r.createdAt,
            r.description,
          ]),
        );
        if (rows.length === 0) return 'no policies: upload one with `capgate policy push <file.wasm> --name <name>`';
        return formatTable(
          [
            { header: 'policy' },
            { header: 'rev', align: 'right' },
            { header: 'sha256' },
            { header: 'size', align: 'right' },
            { header: 'bound' },
            { header: 'created' },
            { header: 'description' },
          ],
          rows,
        );
      });
    });
  });

  const inspect = leaf(policy, 'inspect', 'show one revision: hash, size, imports/exports, WIT, limits')
    .argument('<name>', 'policy name')
    .option('-r, --revision <n>', 'revision (default: latest)', positiveIntArg('--revision'));
  examples(inspect, ['capgate policy inspect memlock-cap', 'capgate policy inspect memlock-cap --revision 2 --json']);
  inspect.action(async (name: string, o: Common & { revision?: number }) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const revision = o.revision ?? (await c.getPolicy(name)).latestRevision;
      const info = await c.getRevision(name, revision);
      out.result(info, () => describeRevision(info));
    });
  });

  const activate = leaf(policy, 'activate', 'bind a revision to an operation (atomic switch)')
    .argument('<name>', 'policy name')
    .option('-r, --revision <n>', 'revision (default: latest)', positiveIntArg('--revision'))
    .addOption(operationOption('--operation <operation>', 'operation to bind'));
  examples(activate, ['capgate policy activate memlock-cap', 'capgate policy activate memlock-cap --revision 3']);
  activate.action(async (name: string, o: Common & { revision?: number; operation: Operation }) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const r = await c.bind(o.operation, {
        policy: name,
        ...(o.revision === undefined ? {} : { revision: o.revision }),
      });
      out.result(r, () => `activated: ${describeBinding(r)}`);
    });
  });

  const unbind = leaf(
    policy,
    'unbind',
    'bind nothing to an operation: its requests are denied no-policy until a revision is activated',
  ).addOption(operationOption('--operation <operation>', 'operation to unbind'));
  examples(unbind, ['capgate policy unbind', 'capgate policy unbind --operation set-memlock --json']);
  unbind.action(async (o: Common & { operation: Operation }) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const r = await c.unbind(o.operation);
      out.result(r, () => `unbound: ${describeBinding(r)}`);
    });
  });

  const history = leaf(
    policy,
    'history',
    'list the binding changes of an operation, newest first (what rollback walks back through)',
  ).addOption(operationOption('--operation <operation>', 'operation whose bindings to list'));
  examples(history, ['capgate policy history', 'capgate policy history --operation set-memlock --json']);
  history.action(async (o: Common & { operation: Operation }) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const { history: entries } = await c.bindingHistory(o.operation);
      out.result({ operation: o.operation, history: entries }, () =>
        entries.length === 0
          ? `${o.operation} was never bound: activate a revision with \`capgate policy activate <name>\``
          : formatTable(
              [
                { header: 'at' },
                { header: 'action' },
                { header: 'policy' },
                { header: 'sha256' },
                { header: 'rolled back' },
              ],
              entries.map((e) => historyRow(out, e)),
            ),
      );
    });
  });

  const rollback = leaf(policy, 'rollback', 'restore the binding that was active before the last change').addOption(
    operationOption('--operation <operation>', 'operation whose binding to roll back'),
  );
  examples(rollback, ['capgate policy rollback', 'capgate policy rollback --operation set-memlock --json']);
  rollback.action(async (o: Common & { operation: Operation }) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const r = await c.rollback(o.operation);
      out.result(r, () => `rolled back: ${describeBinding(r)}`);
    });
  });

  const rm = leaf(policy, 'rm', 'delete a revision (refused while it is bound)')
    .argument('<name>', 'policy name')
    .requiredOption('-r, --revision <n>', 'revision to delete', positiveIntArg('--revision'));
  examples(rm, ['capgate policy rm memlock-cap --revision 1']);
  rm.action(async (name: string, o: Common & { revision: number }) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const r = await c.deleteRevision(name, o.revision);
      out.result(r, () => `deleted ${r.deleted.policy} rev ${r.deleted.revision}`);
    });
  });

  registerPolicyBundle(policy);
}
