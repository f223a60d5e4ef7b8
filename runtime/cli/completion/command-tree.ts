// The commander program as plain data: what shell completion offers at each place in a command
// line. Read from the same tree that parses arguments, so completion cannot drift from it.
import type { Command } from 'commander';

export interface CompletionOption {
  /** Every spelling: ["-s", "--socket"]. */
  names: string[];
  /** The option reads the next word as its value. */
  takesValue: boolean;
  /** Allowed values, when commander knows them. */
  choices: string[];
  description: string;
}

export interface CompletionNode {
  /** Words from the program name to here: ["capgate", "policy", "push"]. */
  path: string[];
  description: string;
  subcommands: CompletionNode[];
  options: CompletionOption[];
  /** Values the command's positional arguments may take, when commander knows them (e.g. bash, zsh). */
  argumentChoices: string[];
}

const HELP: CompletionOption = { names: ['-h', '--help'], takesValue: false, choices: [], description: 'display help' };

export function commandTree(cmd: Command, parent: string[] = []): CompletionNode {
  const path = [...parent, cmd.name()];
  const options = cmd.options
    .filter((o) => !o.hidden)
    .map((o) => ({
      names: [o.short, o.long].filter((n): n is string => typeof n === 'string'),
      takesValue: o.required || o.optional,
      choices: [...(o.argChoices ?? [])],
      description: o.description,
    }));
  return {
    path,
    description: cmd.description(),
    subcommands: cmd.commands.map((c) => commandTree(c, path)),
    options: [...options, HELP],
    argumentChoices: cmd.registeredArguments.flatMap((a) => a.argChoices ?? []),
  };
}

export function* walk(node: CompletionNode): Generator<CompletionNode> {
  yield node;
  for (const s of node.subcommands) yield* walk(s);
}
