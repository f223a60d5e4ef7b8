// `capgate request set-memlock`: act as an unprivileged client on the request socket.
import type { Command } from 'commander';
import { formatByteSize } from '../../simulator/byte-size.ts';
import { withRequester } from '../daemon-client.ts';
import { EXIT } from '../exit-codes.ts';
import { byteSizeArg, examples, positiveIntArg, withJson, withRequestSocket } from '../options.ts';
import { createOutput } from '../output/output.ts';

export function registerRequest(program: Command): void {
  const request = program
    .command('request')
    .description('ask a daemon for a privileged operation, as an unprivileged client would');
  const setMemlock = withJson(
    withRequestSocket(
      request.command('set-memlock').description('ask for RLIMIT_MEMLOCK of a process to be set (soft and hard)'),
    ),
  )
    .requiredOption('-p, --pid <pid>', 'target process', positiveIntArg('--pid', 0xffff_ffff))
    .requiredOption(
      '-b, --bytes <size>',
      'new limit: a Kubernetes quantity (16Gi binary, 16G decimal), bytes, or unlimited',
      byteSizeArg,
    );
  setMemlock.addHelpText(
    'after',
    "\nWho is asking comes from the kernel (this process's pid/uid), never from the arguments.\nExit status: 0 allowed, 1 denied, 3 no daemon.\n",
  );
  examples(setMemlock, [
    'capgate request set-memlock --pid 4242 --bytes 8Gi',
    'capgate request set-memlock --pid 4242 --bytes unlimited --json',
  ]);
  setMemlock.action(async (o: { socket?: string; json: boolean; pid: number; bytes: bigint }) => {
    const out = createOutput(o.json);
    await withRequester(o.socket, async (c) => {
      const r = await c.setMemlock(o.pid, o.bytes);
      out.result(r, () =>
        r.decision === 'allow'
          ? `${out.colours.pass('allowed')}: memlock of pid ${o.pid} set to ${formatByteSize(o.bytes)} (decision ${r.decisionId})`
          : `${out.colours.fail('denied')}: ${r.reason}${r.errorKind && r.errorKind !== r.reason ? ` [${r.errorKind}]` : ''} (decision ${r.decisionId})`,
      );
      process.exitCode = r.decision === 'allow' ? EXIT.ok : EXIT.failed;
    });
  });
}
