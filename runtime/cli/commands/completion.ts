// `capgate completion bash|zsh`: a shell completion script, generated from this program's tree.
import type { Command } from 'commander';
import { Argument } from 'commander';
import { bashCompletion } from '../completion/bash.ts';
import { commandTree } from '../completion/command-tree.ts';
import { zshCompletion } from '../completion/zsh.ts';
import { examples } from '../options.ts';

export function registerCompletion(program: Command): void {
  const cmd = program
    .command('completion')
    .description('print a shell completion script (subcommands, options and their choices)')
    .addArgument(new Argument('<shell>', 'the shell to complete in').choices(['bash', 'zsh']));
  examples(cmd, [
    'source <(capgate completion bash)',
    'capgate completion bash > /etc/bash_completion.d/capgate',
    'capgate completion zsh > "${fpath[1]}/_capgate"',
  ]);
  cmd.action((shell: 'bash' | 'zsh') => {
    const tree = commandTree(program);
    process.stdout.write(shell === 'bash' ? bashCompletion(tree) : zshCompletion(tree));
  });
}
