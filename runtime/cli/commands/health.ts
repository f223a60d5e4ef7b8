// `capgate health`: asks the daemon's request socket (or, with --admin, its admin socket) whether
// it is serving, for scripts and for Kubernetes exec probes. Healthy only when the daemon answers
// and says "ok" (with --live, "degraded" too). The admin socket with --live suits a liveness
// probe: only root reaches it, so clients crowding the request socket cannot make it fail, and a
// degraded daemon, which a restart would not mend, is not restarted.
import type { Command } from 'commander';
import type { HealthResponse } from '../../wire/index.ts';
import { withAdmin, withRequester } from '../daemon-client.ts';
import { EXIT } from '../exit-codes.ts';
import { examples, positiveIntArg, withJson, withRequestSocket } from '../options.ts';
import { createOutput } from '../output/output.ts';

export const HEALTH_EXIT_HELP = `
Exit status:
  0  the daemon answered and is serving (status ok; with --live, degraded too)
  1  the daemon answered but is not serving as asked (degraded: its problems are listed; shutting-down), or did not answer in time
  3  no daemon at the socket (or no permission to reach it)
  75 the daemon answered 503 with Retry-After (too many connections at once): ask again then`;

function isHealth(body: unknown): body is HealthResponse {
  const b = body as Partial<HealthResponse> | null;
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.status === 'string' &&
    typeof b.version === 'string' &&
    typeof b.uptimeS === 'number'
  );
}

export function registerHealth(program: Command): void {
  const cmd = withJson(
    withRequestSocket(
      program
        .command('health')
        .description('check that the daemon is serving (its request socket answers "ok"); for probes and scripts'),
    ),
  )
    .option('--admin', 'ask the admin socket instead (then --socket names the admin socket)', false)
    .option(
      '--live',
      'healthy while the daemon serves, degraded included: for a liveness probe (a restart mends no degraded problem: a refused policy directory, a missing cgroup mount)',
      false,
    )
    .option('--timeout <ms>', 'give up after this many milliseconds', positiveIntArg('--timeout', 600_000), 2000);
  cmd.addHelpText('after', HEALTH_EXIT_HELP);
  examples(cmd, [
    'capgate health',
    'capgate health --socket /run/capgate/request.sock --timeout 1000',
    'capgate health --admin --json',
    'capgate health --admin --live   # a liveness probe',
  ]);
  cmd.action(async (o: { socket?: string; json: boolean; admin: boolean; live: boolean; timeout: number }) => {
    const out = createOutput(o.json);
    const check = async (c: { health(): Promise<HealthResponse> }): Promise<void> => {
      const body: unknown = await c.health();
      const healthy = isHealth(body) && (body.status === 'ok' || (o.live && body.status === 'degraded'));
      out.result(isHealth(body) ? body : { status: 'unexpected-answer', answer: body }, () =>
        isHealth(body)
          ? [
              `${healthy ? out.colours.pass(body.status) : out.colours.fail(body.status)}: capgate ${body.version}, up ${body.uptimeS} s`,
              ...(body.problems ?? []).map((p) => `  ${p}`),
            ].join('\n')
          : `${out.colours.fail('unhealthy')}: the socket answered, but not as capgate does: ${JSON.stringify(body).slice(0, 200)}`,
      );
      process.exitCode = healthy ? EXIT.ok : EXIT.failed;
    };
    await (o.admin ? withAdmin(o.socket, check, o.timeout) : withRequester(o.socket, check, o.timeout));
  });
}
