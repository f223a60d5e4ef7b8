// Options shared by many commands, and parsing of their values with errors that say what to write.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { parseByteSize } from '../simulator/byte-size.ts';

// No default value: without --socket, daemon-client.ts looks where socket-locations.ts says the
// daemon listens (and can then list every place it looked).
const SEARCH = (kind: 'admin' | 'request', variable: string): string =>
  `${kind} socket of the daemon (default: $${variable}, else $CAPGATE_RUN_DIR/${kind}.sock, else ./.capgate/run/${kind}.sock then /run/capgate/${kind}.sock, the first that exists; /run/capgate only as root)`;

export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'machine-readable JSON on stdout', false);
}

export function withAdminSocket(cmd: Command): Command {
  return cmd.addOption(new Option('-s, --socket <path>', SEARCH('admin', 'CAPGATE_ADMIN_SOCKET')));
}

export function withRequestSocket(cmd: Command): Command {
  return cmd.addOption(new Option('-s, --socket <path>', SEARCH('request', 'CAPGATE_REQUEST_SOCKET')));
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
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max)
      throw new InvalidArgumentError(`${what} must be a whole number from 1 to ${max}, got "${value}"`);
    return Number(value);
  };
}

export function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}
