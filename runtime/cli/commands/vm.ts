// `capgate vm register|ls|rm`: the VM registry (identity plus a kernel-verifiable anchor).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { VmRecord, VmRegistration } from '../../wire/index.ts';
import { usageError } from '../cli-error.ts';
import { withAdmin } from '../daemon-client.ts';
import { examples, labelArg, positiveIntArg, withAdminSocket, withJson } from '../options.ts';
import { createOutput } from '../output/output.ts';
import { formatTable } from '../output/table.ts';

interface Common {
  socket?: string;
  json: boolean;
}

function idArg(value: string): number {
  if (!/^-?\d+$/.test(value) || Number(value) < -(2 ** 31) || Number(value) > 2 ** 31 - 1) {
    throw new InvalidArgumentError(`--id must be a signed 32-bit integer, got "${value}"`);
  }
  return Number(value);
}

const anchorText = (vm: VmRecord): string =>
  [
    vm.anchor.rootPid !== undefined ? `pid ${vm.anchor.rootPid}` : '',
    vm.anchor.cgroup !== undefined ? `cgroup ${vm.anchor.cgroup}` : '',
  ]
    .filter(Boolean)
    .join(', ');

export function registerVm(program: Command): void {
  const vm = program
    .command('vm')
    .description('register VMs (identity + kernel-verifiable anchor) with a running daemon');

  const register = withJson(
    withAdminSocket(vm.command('register').description('register a VM, anchored at a root process and/or a cgroup')),
  )
    .requiredOption('--uuid <uuid>', 'VM uuid')
    .requiredOption('--name <name>', 'VM name')
    .requiredOption('--id <id>', 'VM id (signed 32-bit)', idArg)
    .option('-l, --label <key=value>', 'label (repeatable)', labelArg)
    .option(
      '--pid <pid>',
      'root process of the VM (e.g. its QEMU); descendants are members',
      positiveIntArg('--pid', 4_194_304),
    )
    .option('--cgroup <path>', 'cgroup v2 path of the VM (as in /proc/<pid>/cgroup); processes at or below are members')
    .option('--update', 'replace an existing registration with the same uuid', false);
  examples(register, [
    'capgate vm register --uuid 6f1c2a8e-7b1d-4c39-9a57-0d5e1f2a3b4c --name db-vm --id 7 --label vfio=true --pid 4242',
    'capgate vm register --uuid 6f1c... --name web --id 8 --cgroup /kubepods/pod123 --label memory-bytes=17179869184',
  ]);
  register.action(
    async (
      o: Common & {
        uuid: string;
        name: string;
        id: number;
        label?: Array<[string, string]>;
        pid?: number;
        cgroup?: string;
        update: boolean;
      },
    ) => {
      if (o.pid === undefined && o.cgroup === undefined) {
        throw usageError('a VM needs an anchor the kernel can verify', 'pass --pid <root pid> and/or --cgroup <path>');
      }
      const out = createOutput(o.json);
      const body: VmRegistration = {
        identity: { uuid: o.uuid, name: o.name, id: o.id, labels: o.label ?? [] },
        anchor: {
          ...(o.pid !== undefined ? { rootPid: o.pid } : {}),
          ...(o.cgroup !== undefined ? { cgroup: o.cgroup } : {}),
        },
      };
      await withAdmin(o.socket, async (c) => {
        const r = o.update ? await c.updateVm(o.uuid, body) : await c.registerVm(body);
        out.result(
          r,
          () =>
            `${o.update ? 'updated' : 'registered'} VM ${r.vm.identity.name} (${r.vm.identity.uuid}) anchored at ${anchorText(r.vm)}`,
        );
      });
    },
  );

  const ls = withJson(withAdminSocket(vm.command('ls').description('list registered VMs')));
  examples(ls, ['capgate vm ls', 'capgate vm ls --json']);
  ls.action(async (o: Common) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const { vms } = await c.listVms();
      out.result({ vms }, () => {
        if (vms.length === 0) return 'no VMs registered: add one with `capgate vm register`';
        return formatTable(
          [
            { header: 'uuid' },
            { header: 'name' },
            { header: 'id', align: 'right' },
            { header: 'anchor' },
            { header: 'labels' },
          ],
          vms.map((v) => [
            v.identity.uuid,
            v.identity.name,
            String(v.identity.id),
            anchorText(v),
            v.identity.labels.map(([k, val]) => `${k}=${val}`).join(' '),
          ]),
        );
      });
    });
  });

  const rm = withJson(withAdminSocket(vm.command('rm').description('unregister a VM'))).argument('<uuid>', 'VM uuid');
  examples(rm, ['capgate vm rm 6f1c2a8e-7b1d-4c39-9a57-0d5e1f2a3b4c']);
  rm.action(async (uuid: string, o: Common) => {
    const out = createOutput(o.json);
    await withAdmin(o.socket, async (c) => {
      const r = await c.unregisterVm(uuid);
      out.result(r, () => `unregistered VM ${r.unregistered}`);
    });
  });
}
