// Colour only when a person is looking: a TTY, and neither NO_COLOR nor --json.
import type { Paint } from '../../simulator/report.ts';

export interface Colours extends Paint {
  bold(s: string): string;
  warn(s: string): string;
}

const wrap =
  (open: number, close: number) =>
  (s: string): string =>
    `\u001b[${open}m${s}\u001b[${close}m`;

export function coloursFor(stream: NodeJS.WriteStream): Colours {
  const env = process.env;
  const on =
    env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0'
      ? true
      : env.NO_COLOR === undefined && stream.isTTY === true && env.TERM !== 'dumb';
  if (!on) {
    const id = (s: string): string => s;
    return { pass: id, fail: id, dim: id, bold: id, warn: id };
  }
  return { pass: wrap(32, 39), fail: wrap(31, 39), dim: wrap(2, 22), bold: wrap(1, 22), warn: wrap(33, 39) };
}
