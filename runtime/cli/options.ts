// Options shared by many commands, and parsing of their values with errors that say what to write.
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { currentEnvironment, defaultDirs } from '../daemon/environment.ts';
import { parseByteSize } from '../simulator/byte-size.ts';

// Where `capgate serve` puts its sockets by default: /run/capgate as root, ./.capgate/run otherwise.
const RUN_DIR = defaultDirs(currentEnvironment()).runDir;
export const DEFAULT_ADMIN_SOCKET = join(RUN_DIR, 'admin.sock');
export const DEFAULT_REQUEST_SOCKET = join(RUN_DIR, 'request.sock');

export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'machine-readable JSON on stdout', false);
}

export function withAdminSocket(cmd: Command): Command {
  return cmd.addOption(new Option('-s, --socket <path>', 'admin socket of the daemon').default(DEFAULT_ADMIN_SOCKET).env('CAPGATE_ADMIN_SOCKET'));
}

export function withRequestSocket(cmd: Command): Command {
  return cmd.addOption(new Option('-s, --socket <path>', 'request socket of the daemon').default(DEFAULT_REQUEST_SOCKET).env('CAPGATE_REQUEST_SOCKET'));
}

export function byteSizeArg(value: string): bigint {
  const r = parseByteSize(value);
  if (!r.ok) throw new InvalidArgumentError(r.message);
  return r.bytes;
}

/** --label key=value, repeatable: labels in the order given (keys may repeat, as in the contract). */
export function labelArg(value: string, previous: Array<[string, string]> = []): Array<[string, string]> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`label "${value}" must be key=value, e.g. --label vfio=true`);
  return [...previous, [value.slice(0, eq), value.slice(eq + 1)]];
}

export function positiveIntArg(what: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`${what} must be a whole number from 1 to ${max}, got "${value}"`);
    return Number(value);
  };
}

export function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}
