// Where a command's result goes: JSON on stdout for --json, text for people otherwise.
// Diagnostics and progress go to stderr so stdout stays parseable.
import { coloursFor, type Colours } from './colour.ts';
import { toJson } from './json.ts';

export interface Output {
  readonly json: boolean;
  readonly colours: Colours;
  /** The result: `data` as JSON with --json, `human()` text otherwise. */
  result(data: unknown, human: () => string): void;
  /** A progress note for long steps; only for people on a TTY. */
  progress(message: string): void;
  /** A line for people (stderr), never mixed into --json output. */
  note(message: string): void;
}

export function createOutput(json: boolean): Output {
  const colours = coloursFor(process.stdout);
  const errColours = coloursFor(process.stderr);
  return {
    json,
    colours: json ? coloursFor({ isTTY: false } as NodeJS.WriteStream) : colours,
    result(data, human) {
      process.stdout.write(`${json ? toJson(data) : human()}\n`);
    },
    progress(message) {
      if (!json && process.stderr.isTTY) process.stderr.write(`${errColours.dim(`… ${message}`)}\n`);
    },
    note(message) {
      if (!json) process.stderr.write(`${message}\n`);
    },
  };
}
