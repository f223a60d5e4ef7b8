// Process entry of the daemon, compiled: `node dist/runtime/daemon/main.js [--config file.yaml]
// [--json '{...}']`.
// Tests spawn it; `capgate serve` does the same in-process. Exit codes: 0 clean stop,
// 1 startup failure (bad config, unsupported platform, socket in use).
import { loadConfigFile, checkConfigShape, mergeConfig, type DaemonConfigInput } from './config.ts';
import { startDaemon } from './daemon.ts';
import { notifyReady } from './sd-notify.ts';
import { installSignalHandlers } from './signals.ts';

function parseArgs(argv: string[]): DaemonConfigInput {
  let config: DaemonConfigInput = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if ((arg === '--config' || arg === '--json') && value === undefined) throw new Error(`${arg} needs a value`);
    if (arg === '--config') config = mergeConfig(config, loadConfigFile(value!));
    else if (arg === '--json') config = mergeConfig(config, checkConfigShape(JSON.parse(value!), '--json'));
    else throw new Error(`unknown argument ${arg}: use --config <file> and/or --json '<config as JSON>'`);
    i++;
  }
  return config;
}

try {
  const daemon = await startDaemon(parseArgs(process.argv.slice(2)));
  installSignalHandlers(daemon);
  notifyReady(daemon);
} catch (err) {
  process.stderr.write(`capgate: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
