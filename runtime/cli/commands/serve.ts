// `capgate serve`: run the daemon in this process (config file, then flags on top).
import type { Command } from 'commander';
import { Option } from 'commander';
import type { DaemonConfigInput } from '../../daemon/config.ts';
import { CliError, usageError } from '../cli-error.ts';
import { EXIT } from '../exit-codes.ts';
import { examples, positiveIntArg, withJson } from '../options.ts';
import { createOutput } from '../output/output.ts';

interface ServeOptions {
  config?: string;
  configJson?: string;
  runDir?: string;
  stateDir?: string;
  adminSocket?: string;
  requestSocket?: string;
  workers?: number;
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  json: boolean;
}

// The config module (its schema library) loads for `serve` only: other commands start quicker.
type ConfigModule = typeof import('../../daemon/config.ts');

function configFrom(
  o: ServeOptions,
  { loadConfigFile, checkConfigShape, mergeConfig }: ConfigModule,
): DaemonConfigInput {
  let config: DaemonConfigInput = o.config ? loadConfigFile(o.config) : {};
  if (o.configJson) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(o.configJson);
    } catch (e) {
      throw usageError(`--config-json is not JSON: ${(e as Error).message}`);
    }
    // Merged key by key: `--config-json '{"request":{"deadlineMs":500}}'` keeps the file's other request keys.
    config = mergeConfig(config, checkConfigShape(parsed, '--config-json'));
  }
  const set = <K extends keyof DaemonConfigInput>(k: K, v: DaemonConfigInput[K] | undefined): void => {
    if (v !== undefined) config[k] = v;
  };
  set('runDir', o.runDir);
  set('stateDir', o.stateDir);
  set('adminSocket', o.adminSocket);
  set('requestSocket', o.requestSocket);
  if (o.workers !== undefined) config.engine = { ...config.engine, workers: o.workers };
  if (o.logLevel !== undefined) config.log = { level: o.logLevel };
  return config;
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('run the capgate daemon (admin and request sockets, policy engine, audit log) until SIGTERM/SIGINT')
    .option('-c, --config <file>', 'YAML or JSON config file')
    .option('--config-json <json>', 'config as inline JSON, merged key by key over the file')
    .option(
      '--run-dir <dir>',
      'directory of the sockets (default $CAPGATE_RUN_DIR, else /run/capgate as root, ./.capgate/run otherwise; created 0755 if missing)',
    )
    .option(
      '--state-dir <dir>',
      'directory of the database (default /var/lib/capgate as root, ./.capgate/state otherwise; created 0700 if missing)',
    )
    .option(
      '--admin-socket <path>',
      'admin socket path (relative to --run-dir; default $CAPGATE_ADMIN_SOCKET, else admin.sock)',
    )
    .option(
      '--request-socket <path>',
      'request socket path (relative to --run-dir; default $CAPGATE_REQUEST_SOCKET, else request.sock)',
    )
    .option('--workers <n>', 'policy evaluation workers', positiveIntArg('--workers', 64))
    .addOption(
      new Option('--log-level <level>', 'log level (logs are JSON lines on stdout)').choices([
        'trace',
        'debug',
        'info',
        'warn',
        'error',
        'fatal',
        'silent',
      ]),
    );
  withJson(cmd);
  cmd.addHelpText(
    'after',
    "\nThe run and state directories and the config file must be owned by root or the daemon's uid and\nwritable by nobody else, and so must every parent (a root-owned sticky parent excepted); the\ndaemon refuses to start otherwise, naming the path and the fix. See SECURITY.md.",
  );
  examples(cmd, [
    'capgate serve',
    'capgate serve --config /etc/capgate/config.yaml',
    'capgate serve --run-dir /run/capgate-test --state-dir /var/lib/capgate-test --log-level warn',
  ]);
  cmd.action(async (o: ServeOptions) => {
    const out = createOutput(o.json);
    // The daemon (config schema, SQLite, servers, engine) loads only for `serve`, keeping other commands quick.
    const [configModule, { startDaemon, installSignalHandlers, notifyReady }] = await Promise.all([
      import('../../daemon/config.ts'),
      import('../../daemon/index.ts'),
    ]);
    const { ConfigError } = configModule;
    let config: DaemonConfigInput;
    try {
      config = configFrom(o, configModule);
    } catch (e) {
      if (e instanceof ConfigError)
        throw usageError(e.message, 'fix the config file or flags; `capgate serve --help` lists them');
      throw e;
    }
    let daemon: Awaited<ReturnType<typeof startDaemon>>;
    try {
      daemon = await startDaemon(config);
    } catch (e) {
      if (e instanceof ConfigError) throw usageError(e.message);
      throw new CliError(`the daemon could not start: ${(e as Error).message}`, EXIT.failed);
    }
    // Handlers first: whoever sees "serving" (a script, systemd) may send SIGTERM at once.
    installSignalHandlers(daemon);
    out.result(
      {
        adminSocket: daemon.adminSocket,
        requestSocket: daemon.requestSocket,
        database: daemon.config.database,
        startupMs: daemon.startupMs,
      },
      () =>
        `capgate serving: admin ${daemon.adminSocket}, requests ${daemon.requestSocket} (started in ${Math.round(daemon.startupMs)} ms)`,
    );
    notifyReady(daemon);
  });
}
