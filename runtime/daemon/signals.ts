// SIGTERM/SIGINT: graceful stop (finish in-flight, commit audit, close the database), then exit.
// A second signal while stopping exits at once.
import type { RunningDaemon } from './daemon.ts';

export function installSignalHandlers(
  daemon: RunningDaemon,
  exit: (code: number) => void = (c) => process.exit(c),
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return exit(130);
    stopping = true;
    daemon.logger.info({ signal }, 'signal received');
    daemon.close().then(
      () => exit(0),
      (err: unknown) => {
        daemon.logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
