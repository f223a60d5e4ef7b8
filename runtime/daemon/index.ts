// The capgate daemon as a library: what `capgate serve` and the tests use.
export { startDaemon, CAPGATE_VERSION, type RunningDaemon, type StartOptions } from './daemon.ts';
export {
  resolveConfig,
  loadConfigFile,
  checkConfigShape,
  defaultDirs,
  ConfigError,
  type DaemonConfig,
  type DaemonConfigInput,
} from './config.ts';
export { installSignalHandlers } from './signals.ts';
export { notifyReady } from './sd-notify.ts';
